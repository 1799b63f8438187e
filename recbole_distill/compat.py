"""Fixes that let RecBole 1.2.1 run on today's stack (numpy 2, torch >= 2.6, pandas 2.x).

Importing :mod:`recbole_distill` applies every fix once, before any RecBole object exists. Nothing here
edits site-packages; each fix names the failure it prevents and the condition under which it can go.
"""

import os
import warnings

import numpy as np

# torch >= 2.6 loads with ``weights_only=True`` by default, but RecBole checkpoints pickle the whole
# ``Config`` (and the optimizer state), so ``Trainer.evaluate(load_best_model=True)``,
# ``Trainer.resume_checkpoint`` and ``load_data_and_model`` fail with "Weights only load failed".
# RecBole never passes ``weights_only``, so torch honours this switch; a user who sets it keeps theirs.
# Only load checkpoints you trust. Can go when RecBole passes ``weights_only=False`` itself.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected")

import pandas  # noqa: E402
import torch  # noqa: E402

# numpy 2 removed these aliases; ``Config.compatibility_settings`` reads ``np.float_``, ``np.complex_``
# and ``np.unicode_`` on every ``Config(...)`` and fails with "`np.float_` was removed in the NumPy 2.0
# release". Can go when RecBole stops reading them (still read on RecBole master, 2025-02).
_NUMPY2_ALIASES = {"float_": np.float64, "complex_": np.complex128, "unicode_": np.str_}

# RecBole installs ``np.float``, ``np.long``, ... only inside ``Config.__init__``; a process that only
# unpickles a saved Config (reloading a checkpoint) never runs it, and NDCG / MRR then fail with
# "module 'numpy' has no attribute 'float'". Installing them here makes checkpoint-only processes work.
_LEGACY_ALIASES = {
    "bool": np.bool_,
    "int": np.int_,
    "float": np.float64,
    "complex": np.complex128,
    "object": np.object_,
    "str": np.str_,
    "long": np.int_,
    "unicode": np.str_,
}

for _name, _alias in {**_NUMPY2_ALIASES, **_LEGACY_ALIASES}.items():
    if _name not in np.__dict__:
        setattr(np, _name, _alias)

# pandas 3 turns RecBole's ``df[field].fillna(..., inplace=True)`` into a silent no-op (copy-on-write),
# so atomic files with missing values load wrong or crash later. setup.py pins pandas<3; this warns a
# user who overrode the pin. Can go when RecBole fills NaNs without chained assignment.
# pandas 2.x already warns about that pattern (FutureWarning, ChainedAssignment) on every dataset load;
# with the pin the fill still works, so the warning is noise.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.data\.dataset")
if int(pandas.__version__.split(".")[0]) >= 3:
    warnings.warn(
        f"recbole-distill needs pandas<3 (found {pandas.__version__}): RecBole 1.2.1 fills missing "
        "values in place, which pandas 3 silently skips. Run: pip install 'pandas<3'",
        stacklevel=2,
    )

# ``recbole/model/sequential_recommender/sine.py`` calls ``torch.autograd.set_detect_anomaly(True)``
# at import, which any ``Config(model=...)`` triggers; every later backward pass is then 15-20 %
# slower. Import the package once now and switch anomaly detection back off.
import recbole.model.sequential_recommender  # noqa: E402,F401

torch.autograd.set_detect_anomaly(False)

# torch 2.13 warns once per epoch that RecBole's ``torch.cuda.amp.GradScaler(...)`` is deprecated;
# the call still works and the warning is noise in every training log.
warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\.GradScaler", category=FutureWarning)

# ``recbole.quick_start`` imports ray at module top, and ray 2.6.3 fails to import here (it needs
# ``pkg_resources``, gone from setuptools >= 81, and ``np.bool8``). recbole_distill never imports
# ``recbole.quick_start``: :mod:`recbole_distill.quick_start` provides ray-free ``run_recbole_distill``
# and ``load_data_and_model`` that also know the plugin's models.

# hyperopt >= 0.2.8 samples search spaces with numpy Generators (``rng.integers``), but RecBole's
# ``exhaustive_search`` (HyperTuning's default algorithm) hands it a ``np.random.RandomState`` and every
# trial fails with "'RandomState' object has no attribute 'integers'". That module only uses numpy for
# this RandomState (and in ``plot_hyper``), so it gets a numpy whose ``random.RandomState`` is
# ``default_rng``. Can go when RecBole seeds hyperopt with a Generator.
import types  # noqa: E402

import recbole.trainer.hyper_tuning as _hyper_tuning  # noqa: E402


class _NumpyWithGenerators(types.ModuleType):
    random = types.SimpleNamespace(RandomState=np.random.default_rng)

    def __getattr__(self, name):
        return getattr(np, name)


_hyper_tuning.np = _NumpyWithGenerators("numpy")


# RecBole's trainer wraps the model as ``DistributedDataParallel(model, device_ids=[local_rank])``, which
# torch refuses for a model on the CPU ("device_ids ... only work with single-device/multiple-device GPU
# modules"), so distributed training on gloo (see ``Config._init_device``) would stop there. The wrapper
# drops ``device_ids`` for CPU models and leaves GPU models as RecBole wraps them. Can go when RecBole
# passes ``device_ids`` only for CUDA devices.
import recbole.trainer.trainer as _trainer  # noqa: E402


def _distributed_data_parallel(module, device_ids=None, **kwargs):
    if next(module.parameters()).device.type == "cpu":
        device_ids = None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids, **kwargs)


_trainer.DistributedDataParallel = _distributed_data_parallel


# RecBole's ``ensure_dir`` checks for a folder, then creates it; the ranks of a distributed run race
# between the two (``init_logger``'s ``log/<model>``, the trainer's ``checkpoint_dir``) and the loser
# stops with "FileExistsError: [Errno 17] File exists". Creating with ``exist_ok`` has no such window.
# The modules that imported the name get the fixed one too. Can go when RecBole passes ``exist_ok``.
import recbole.data.dataset.dataset as _dataset_module  # noqa: E402
import recbole.data.utils as _data_utils  # noqa: E402
import recbole.utils as _utils  # noqa: E402
import recbole.utils.logger as _logger  # noqa: E402
import recbole.utils.utils as _utils_utils  # noqa: E402


def _ensure_dir(dir_path):
    os.makedirs(dir_path, exist_ok=True)


for _module in (_utils, _utils_utils, _logger, _trainer, _data_utils, _dataset_module):
    _module.ensure_dir = _ensure_dir
