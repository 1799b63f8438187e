"""Lookups that find recbole-distill's models, trainers and datasets first, then RecBole's."""

import importlib

from recbole.data import create_dataset as recbole_create_dataset
from recbole.utils import ModelType
from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

from recbole_distill.data.dataset import KeyedSequentialDataset, TeacherSequentialDataset, dataset_errors
from recbole_distill.errors import RecBoleDistillError
from recbole_distill.model.abstract_recommender import is_plugin_model

PLUGIN_MODEL_PACKAGE = "recbole_distill.model.sequential_recommender"
RECBOLE_MODEL_PACKAGES = [
    f"recbole.model.{kind}_recommender" for kind in ("general", "context_aware", "sequential", "knowledge_aware")
]


def _find_module(package, model_name):
    path = f"{package}.{model_name.lower()}"
    return path if importlib.util.find_spec(path) is not None else None


def plugin_models():
    """Names of the models recbole-distill adds to RecBole."""
    package = importlib.import_module(PLUGIN_MODEL_PACKAGE)
    return sorted(name for name in dir(package) if not name.startswith("_") and isinstance(getattr(package, name), type))


def get_model(model_name):
    """Return the model class called ``model_name``: a recbole-distill model (``DLLM2Rec<Model>`` for any of
    RecBole's sequential models, made on demand), else a RecBole model."""
    path = _find_module(PLUGIN_MODEL_PACKAGE, model_name)
    if path is not None:
        return getattr(importlib.import_module(path), model_name)
    backbone = model_name.removeprefix("DLLM2Rec")
    if backbone != model_name and _find_module("recbole.model.sequential_recommender", backbone):
        return importlib.import_module("recbole_distill.model.dllm2rec").student_class(backbone)
    # RecBole's own lookup ends in ``exlib_recommender``, whose import needs lightgbm and xgboost; an
    # unknown name would fail there with "No module named 'lightgbm'" instead of saying it is unknown.
    if any(_find_module(package, model_name) for package in RECBOLE_MODEL_PACKAGES) or model_name.lower() in (
        "lightgbm",
        "xgboost",
    ):
        return recbole_get_model(model_name)
    raise RecBoleDistillError(
        f"unknown model '{model_name}': it is neither a recbole-distill model ({', '.join(plugin_models())}) "
        "nor a RecBole model (DLLM2Rec<Model> distils any of RecBole's sequential models). Check the spelling and "
        "case of --model."
    )


def get_trainer(model_type, model_name):
    """Return the trainer class for a model: the plugin's, else RecBole's made resumable."""
    trainer_module = importlib.import_module("recbole_distill.trainer")
    trainer = getattr(trainer_module, model_name + "Trainer", None)
    if trainer is not None:
        return trainer
    if is_plugin_model(get_model(model_name)):
        return trainer_module.DistillTrainer
    return trainer_module.with_checkpoints(recbole_get_trainer(model_type, model_name))


def create_dataset(config, saved_tables=None):
    """Build the dataset a model needs: plugin models get teacher fields joined on (or, for a saved model,
    the teacher tables it carries: ``saved_tables``), RecBole's sequential models RecBole's samples with their
    keys (for history-free evaluation), the others RecBole's own."""
    if is_plugin_model(config.model_class):
        return TeacherSequentialDataset(config, saved_tables)
    if config["MODEL_TYPE"] == ModelType.SEQUENTIAL and config["benchmark_filename"] is None:
        return KeyedSequentialDataset(config)
    with dataset_errors(config):
        return recbole_create_dataset(config)
