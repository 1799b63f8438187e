"""Ray-free quick start: RecBole's ``run_recbole`` and ``load_data_and_model``, for plugin and RecBole models.

RecBole's own versions live in ``recbole.quick_start``, which imports ray (broken on today's stack)
and only looks models up inside RecBole; these follow the same steps with the plugin's lookups.
"""

import os
import sys
from logging import getLogger

import torch
import torch.multiprocessing as mp
from recbole.data import data_preparation
from recbole.data.transform import construct_transform
from recbole.utils import ModelType, get_environment, get_flops, init_logger, init_seed, set_color

from recbole_distill.config import Config, add_defaults_saved_without
from recbole_distill.errors import ConfigError, RecBoleDistillError
from recbole_distill.model.abstract_recommender import is_plugin_model
from recbole_distill.paths import DATASET_DIR, RECBOLE_DATASET_EXAMPLES
from recbole_distill.utils import create_dataset, get_model, get_trainer


def _load_checkpoint(model_file):
    """A checkpoint saved by RecBole's or recbole-distill's trainer, or a one-line error saying why not."""
    if not os.path.isfile(model_file):
        raise RecBoleDistillError(
            f"checkpoint '{model_file}' does not exist (or is not a file). Pass a .pth file that "
            "run_recbole_distill.py saved in its checkpoint_dir."
        )
    try:
        checkpoint = torch.load(model_file, map_location="cpu")
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for damaged files
        raise RecBoleDistillError(
            f"cannot read checkpoint '{model_file}' ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            "it is truncated, corrupt or not a torch file. Use a checkpoint from a finished run."
        ) from None
    if not isinstance(checkpoint, dict) or not {"config", "state_dict"} <= checkpoint.keys():
        raise RecBoleDistillError(
            f"'{model_file}' is not a RecBole checkpoint (no config and state_dict in it); pass a .pth file "
            "that run_recbole_distill.py saved."
        )
    config = checkpoint["config"]
    # a checkpoint saved on a GPU machine still loads on a CPU-only one
    config["device"] = torch.device("cuda" if config["use_gpu"] and torch.cuda.is_available() else "cpu")
    config["data_path"] = _data_path_here(config, model_file)
    add_defaults_saved_without(config)
    return checkpoint


def _data_path_here(config, model_file):
    """The checkpoint's data folder on this machine. Its config names the folder by the absolute path of the
    machine that wrote it (for ml-100k, inside that machine's recbole install); where that path is gone, the
    data set is found where this install keeps it: RecBole's example data, or this checkout's ``dataset/``."""
    data_path, dataset = config["data_path"], config["dataset"]
    if os.path.isfile(os.path.join(data_path, f"{dataset}.inter")):
        return data_path
    for folder in (RECBOLE_DATASET_EXAMPLES / dataset, DATASET_DIR / dataset):
        if (folder / f"{dataset}.inter").is_file():
            getLogger().info(f"{model_file}: data set {dataset} found in {folder} ({data_path} is not on this machine)")
            return str(folder)
    raise RecBoleDistillError(
        f"'{model_file}' was trained on {dataset} in '{data_path}', which this machine does not have. Put the data "
        f"set's atomic files there or in {DATASET_DIR / dataset} (ML-1M: python -m recbole_distill.data.ml1m)."
    )


def _require_sequential(config, model_file, purpose):
    if config["MODEL_TYPE"] != ModelType.SEQUENTIAL:
        raise RecBoleDistillError(
            f"'{model_file}' holds a {config['model']} ({config['MODEL_TYPE'].name.lower()} model); {purpose} "
            "needs a sequential recommender (SASRec, the DLLM2Rec students, PreBERT, ...)."
        )


def _resume_config(resume_file):
    if not os.path.isfile(resume_file):
        raise RecBoleDistillError(
            f"resume file '{resume_file}' does not exist. An interrupted run leaves '<checkpoint>-resume.pth' in "
            "its checkpoint_dir; a run that finished removes it."
        )
    config = _load_checkpoint(resume_file)["config"]
    if not config["single_spec"]:
        raise RecBoleDistillError(f"'{resume_file}' comes from a distributed run; only single-process runs resume.")
    return config


def prepare_run(model=None, dataset=None, config_file_list=None, config_dict=None, resume_file=None):
    r"""Config, data, model and trainer of one run, built and seeded as RecBole's quick start builds them.

    With ``resume_file`` the run is the one that wrote it: its config comes from the file, and the
    trainer continues where it stopped (see :class:`~recbole_distill.trainer.CheckpointMixin`).

    Returns:
        tuple: ``(config, dataset, train_data, valid_data, test_data, model, trainer)``.
    """
    if resume_file:
        config = _resume_config(resume_file)
    else:
        config = Config(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    if resume_file:
        trainer.resume_checkpoint(resume_file)
    return config, dataset, train_data, valid_data, test_data, model, trainer


def _flops(config, model, dataset, logger):
    """RecBole's FLOPs count of one ``predict`` call, for the log. RecBole's CPR models (SASRecCPR, GRU4RecCPR)
    refuse ``predict`` with an ``assert False`` (they rank all items or nothing), which stops RecBole's own
    quick start before training; here they train, their FLOPs not counted."""
    try:
        # counted on a training sample, which carries the teacher fields (RecBole passes the unsplit dataset)
        return get_flops(model, dataset, config["device"], logger, construct_transform(config))
    except AssertionError:
        return f"not counted: {type(model).__name__}.predict does not run"


def run_recbole_distill(
    model=None, dataset=None, config_file_list=None, config_dict=None, saved=True, resume_file=None, queue=None
):
    r"""Train and test a model, as ``recbole.quick_start.run_recbole`` does.

    Args:
        model (str, optional): a recbole-distill or RecBole model name, e.g. ``DLLM2RecSASRec``.
        dataset (str, optional): dataset name, e.g. ``ml-100k``.
        config_file_list (list, optional): YAML config files.
        config_dict (dict, optional): config values; ``--key=value`` flags override them.
        saved (bool, optional): save the best checkpoint and test it. Defaults to ``True``.
        resume_file (str, optional): continue the interrupted run that left this ``-resume.pth`` file;
            the run's config comes from the file, so the other arguments are ignored.
        queue (multiprocessing.SimpleQueue, optional): rank 0 of a distributed run puts its result here.

    Returns:
        dict: ``best_valid_score``, ``valid_score_bigger``, ``best_valid_result``, ``test_result``.
    """
    config, _, train_data, valid_data, test_data, model, trainer = prepare_run(
        model, dataset, config_file_list, config_dict, resume_file
    )
    logger = getLogger()
    logger.info(set_color("FLOPs", "blue") + f": {_flops(config, model, train_data._dataset, logger)}")

    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"]
    )
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])

    logger.info("The running environment of this training is as follows:\n" + get_environment(config).draw())
    # RecBole's metrics are numpy scalars; plain floats read better in logs and serialise to JSON
    best_valid_result = {key: float(value) for key, value in (best_valid_result or {}).items()}
    test_result = {key: float(value) for key, value in test_result.items()}
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    result = {
        "best_valid_score": float(best_valid_score),
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
    }
    if not config["single_spec"]:
        torch.distributed.destroy_process_group()
        if config["local_rank"] == 0 and queue is not None:
            queue.put(result)
    return result


def _run_rank(rank, model, dataset, config_file_list, config_dict, saved, queue):
    try:
        run_recbole_distill(model, dataset, config_file_list, {**config_dict, "local_rank": rank}, saved, queue=queue)
    except RecBoleDistillError as e:
        # every rank checks the same input before any collective call; rank 0 reports it to the parent,
        # which raises it as one clear error instead of a child's traceback
        if rank == 0:
            queue.put(e)


def run(
    model=None,
    dataset=None,
    config_file_list=None,
    config_dict=None,
    saved=True,
    nproc=1,
    world_size=-1,
    ip="localhost",
    port="5678",
    group_offset=0,
):
    r"""Train and test on one process, or on ``nproc`` processes with RecBole's DistributedDataParallel.

    As ``recbole.quick_start.run``: each process is one rank (``group_offset + local rank``) of a group
    of ``world_size`` processes (``nproc`` unless given, for several nodes) meeting at ``tcp://ip:port``.
    RecBole's distributed sampler gives each rank its share of every batch (``train_batch_size`` stays
    the global batch), teacher fields included; gradients are averaged and metrics gathered. Without a
    GPU the ranks use gloo on the CPU (:meth:`Config._init_device`).

    Returns:
        dict: rank 0's result (see :func:`run_recbole_distill`).
    """
    if not (isinstance(nproc, int) and nproc >= 1):
        raise ConfigError("nproc", nproc, "a whole number >= 1: the processes to start on this machine")
    if not (isinstance(world_size, int) and (world_size == -1 or world_size >= nproc)):
        raise ConfigError("world_size", world_size, f"-1 (= nproc) or a whole number >= nproc ({nproc}): all processes")
    if nproc == 1 and world_size <= 0:
        return run_recbole_distill(model, dataset, config_file_list, config_dict, saved)
    distributed = {
        "world_size": nproc if world_size == -1 else world_size,
        "ip": ip,
        "port": str(port),
        "nproc": nproc,
        "offset": group_offset,
    }
    queue = mp.get_context("spawn").SimpleQueue()
    threads = os.environ.get("OMP_NUM_THREADS")
    # as torchrun does: each rank gets its share of the cores (torch's default, every core per process,
    # made two ranks on two cores take 84 s for an ml-100k epoch that one process trains in 33 s; 29 s so)
    os.environ["OMP_NUM_THREADS"] = threads or str(max(1, (os.cpu_count() or 1) // nproc))
    try:
        mp.start_processes(
            _run_rank,
            args=(model, dataset, config_file_list, {**(config_dict or {}), **distributed}, saved, queue),
            nprocs=nproc,
            join=True,
            start_method="spawn",
        )
    finally:
        if threads is None:
            del os.environ["OMP_NUM_THREADS"]
    result = None if queue.empty() else queue.get()
    if isinstance(result, RecBoleDistillError):
        raise result
    return result


def load_data_and_model(model_file, dataset_class=None, config_update=None, purpose=None):
    r"""Load a checkpoint with its data, as ``recbole.quick_start.load_data_and_model`` does.

    Works in a fresh process for plugin models. A model saved with the teacher tables it reads at inference
    (:attr:`~recbole_distill.model.abstract_recommender.PluginRecommender.saved_teacher_tables`: a student's
    teacher item embeddings, a teacher's item-text embeddings) is rebuilt from them, never from the teacher
    folder, whose later changes then cannot change its scores; its data carry no training rankings (resume a
    run to train further). Checkpoints written before those tables were saved read the folder as before.

    Args:
        model_file (str): a checkpoint saved by RecBole's or recbole-distill's trainer.
        dataset_class (type, optional): build the data with this class instead of the model's own.
        config_update (dict, optional): config values to change before the data is built.
        purpose (str, optional): what the model is loaded for (e.g. ``"teacher export"``); requires a
            sequential model, refused before any data is built.

    Returns:
        tuple: ``(config, model, dataset, train_data, valid_data, test_data)``.
    """
    checkpoint = _load_checkpoint(model_file)
    config = checkpoint["config"]
    if purpose:
        _require_sequential(config, model_file, purpose)
    for key, value in (config_update or {}).items():
        config[key] = value
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    model_class = get_model(config["model"])
    saved = checkpoint.get("other_parameter") or {}
    tables = model_class.saved_teacher_tables if is_plugin_model(model_class) else ()
    saved_tables = {name: saved[name] for name in tables} if tables and all(name in saved for name in tables) else None
    dataset = dataset_class(config) if dataset_class else create_dataset(config, saved_tables)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"], config["reproducibility"])
    model = model_class(config, train_data._dataset).to(config["device"])
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return config, model, dataset, train_data, valid_data, test_data
