"""Ray-free quick start: RecBole's ``run_recbole`` and ``load_data_and_model``, for plugin and RecBole models.

RecBole's own versions live in ``recbole.quick_start``, which imports ray (broken on today's stack)
and only looks models up inside RecBole; these follow the same steps with the plugin's lookups.
"""

import sys
from logging import getLogger

import torch
from recbole.data import data_preparation
from recbole.data.transform import construct_transform
from recbole.utils import get_environment, get_flops, init_logger, init_seed, set_color

from recbole_distill.config import Config
from recbole_distill.utils import create_dataset, get_model, get_trainer


def prepare_run(model=None, dataset=None, config_file_list=None, config_dict=None):
    r"""Config, data, model and trainer of one run, built and seeded as RecBole's quick start builds them.

    Returns:
        tuple: ``(config, dataset, train_data, valid_data, test_data, model, trainer)``.
    """
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
    return config, dataset, train_data, valid_data, test_data, model, trainer


def run_recbole_distill(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True):
    r"""Train and test a model, as ``recbole.quick_start.run_recbole`` does.

    Args:
        model (str, optional): a recbole-distill or RecBole model name, e.g. ``DLLM2RecSASRec``.
        dataset (str, optional): dataset name, e.g. ``ml-100k``.
        config_file_list (list, optional): YAML config files.
        config_dict (dict, optional): config values; ``--key=value`` flags override them.
        saved (bool, optional): save the best checkpoint and test it. Defaults to ``True``.

    Returns:
        dict: ``best_valid_score``, ``valid_score_bigger``, ``best_valid_result``, ``test_result``.
    """
    config, _, train_data, valid_data, test_data, model, trainer = prepare_run(model, dataset, config_file_list, config_dict)
    logger = getLogger()
    # counted on a training sample, which carries the teacher fields (RecBole passes the unsplit dataset)
    flops = get_flops(model, train_data._dataset, config["device"], logger, construct_transform(config))
    logger.info(set_color("FLOPs", "blue") + f": {flops}")

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
    return {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
    }


def load_data_and_model(model_file, dataset_class=None):
    r"""Load a checkpoint with its data, as ``recbole.quick_start.load_data_and_model`` does.

    Works in a fresh process for plugin models (students rejoin their teacher from ``teacher_path``).

    Args:
        model_file (str): a checkpoint saved by RecBole's or recbole-distill's trainer.
        dataset_class (type, optional): build the data with this class instead of the model's own.

    Returns:
        tuple: ``(config, model, dataset, train_data, valid_data, test_data)``.
    """
    checkpoint = torch.load(model_file, map_location="cpu")
    config = checkpoint["config"]
    # a checkpoint saved on a GPU machine still loads on a CPU-only one
    config["device"] = torch.device("cuda" if config["use_gpu"] and torch.cuda.is_available() else "cpu")
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    dataset = dataset_class(config) if dataset_class else create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return config, model, dataset, train_data, valid_data, test_data
