"""RecBole's Config, taught where the plugin's models and their defaults live."""

import os

import torch
import yaml
from recbole.config import Config as RecBoleConfig

from recbole_distill.errors import ConfigError
from recbole_distill.model.abstract_recommender import is_plugin_model
from recbole_distill.model.checks import check_whole
from recbole_distill.paths import DATASET_DIR, PROPERTIES_DIR, RECBOLE_PROPERTIES_DIR
from recbole_distill.utils import get_model


def _model_default_files(model_class):
    """Default files of ``model_class`` and its ancestors, most general first.

    A student inherits its RecBole twin's defaults (``SASRec.yaml`` from RecBole), then the shared
    distillation defaults (``DLLM2Rec.yaml``), then its own; RecBole models are left to RecBole.
    """
    files = []
    for cls in reversed(model_class.__mro__):
        for folder in (RECBOLE_PROPERTIES_DIR / "model", PROPERTIES_DIR / "model"):
            file = folder / f"{cls.__name__}.yaml"
            if file.is_file():
                files.append(file)
    return files


def add_defaults_saved_without(config):
    """Give a saved ``config`` the model defaults it was saved without.

    A checkpoint keeps the config it was trained with. A key that ``properties/model/<Model>.yaml``
    gained since then is read as its default, which keeps the earlier behaviour (new keys are added so);
    without it the key would read as ``None``.
    """
    model_class = get_model(config["model"])
    if not is_plugin_model(model_class):
        return
    for file in _model_default_files(model_class):
        with open(file, encoding="utf-8") as f:
            defaults = yaml.load(f.read(), Loader=config.yaml_loader) or {}
        for key, value in defaults.items():
            config.final_config_dict.setdefault(key, value)


class Config(RecBoleConfig):
    """RecBole's :class:`~recbole.config.Config` that also knows recbole-distill's models.

    Model lookups try the plugin first, then RecBole. Defaults are layered as RecBole's own, then
    ``properties/overall.yaml`` (the plugin's protocol for every model it runs) and
    ``properties/dataset/<dataset>.yaml`` (and ``data_path`` is this checkout's ``dataset/`` folder when the
    data set was converted there), then, for plugin models, ``properties/model/<Model>.yaml``
    over the defaults of the RecBole model it extends.
    Config files, ``config_dict`` and ``--key=value`` flags override them all, as in RecBole. A model that
    trains with ``loss_type: CE`` gets no negative sampling unless ``train_neg_sample_args`` is given
    (RecBole refuses both together); every other model keeps RecBole's.
    """

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
        if isinstance(model, str):
            model = get_model(model)
        return super()._get_model_and_dataset(model, dataset)

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        if (DATASET_DIR / dataset / f"{dataset}.inter").is_file():
            # data sets converted into this checkout (python -m recbole_distill.data.ml1m) are found from
            # any working directory; a data_path you give still wins
            self.internal_config_dict["data_path"] = str(DATASET_DIR)
        files = [PROPERTIES_DIR / "overall.yaml", PROPERTIES_DIR / "dataset" / f"{dataset}.yaml"]
        if is_plugin_model(model_class):
            files += _model_default_files(model_class)
        for file in files:
            if file.is_file():
                self._update_internal_config_dict(file)

    def _init_device(self):
        """RecBole's device set-up, except that distributed runs without a GPU use gloo on the CPU.

        RecBole 1.2.1 starts every distributed run (``local_rank`` set, as ``run`` does) with NCCL on
        ``cuda:<local_rank>``, which fails on a machine without GPUs. There the process group is gloo
        and the device the CPU; everything else (rank = ``local_rank + offset``, ``world_size``,
        ``tcp://ip:port``, quiet ranks other than 0) is as RecBole does it. With GPUs: RecBole's NCCL.
        """
        config = self.final_config_dict
        if "local_rank" not in config or (torch.cuda.is_available() and str(config["gpu_id"]) not in ("", "()")):
            return super()._init_device()
        config["gpu_id"] = ""
        torch.distributed.init_process_group(
            backend="gloo",
            rank=config["local_rank"] + config["offset"],
            world_size=config["world_size"],
            init_method=f"tcp://{config['ip']}:{config['port']}",
        )
        config.update(device=torch.device("cpu"), single_spec=False)
        if config["local_rank"] != 0:
            config.update(state="error", show_progress=False, verbose=False)

    def _set_default_parameters(self):
        config = self.final_config_dict
        if config.get("loss_type") == "CE" and "train_neg_sample_args" not in self.external_config_dict:
            # RecBole refuses its own default negative sampling for a sequential model with loss_type CE;
            # a model or loss that needs negatives (BPR, loss_type: BPR) keeps RecBole's sampling
            config["train_neg_sample_args"] = None
        super()._set_default_parameters()
        checkpoint_dir = config.get("checkpoint_dir")
        if isinstance(checkpoint_dir, str) and os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
            raise ConfigError("checkpoint_dir", checkpoint_dir, "a folder for checkpoints; this path is a file")
        if is_plugin_model(self.model_class):
            if config.get("warmup_steps") is not None:
                # every plugin model trains with DistillTrainer, which reads this key
                check_whole(config, "warmup_steps", meaning="optimizer steps of linear learning-rate warm-up")
            self.model_class.check_config(config)
