"""recbole-distill: distil language-model recommenders into RecBole's sequential models.

Importing the package applies the compatibility fixes in :mod:`recbole_distill.compat` first.
"""

from recbole_distill import compat  # noqa: F401  (must run before anything touches RecBole)
from recbole_distill.config import Config
from recbole_distill.quick_start import load_data_and_model, run_recbole_distill
from recbole_distill.utils import create_dataset, get_model, get_trainer

__version__ = "0.1.0"
__all__ = ["Config", "create_dataset", "get_model", "get_trainer", "load_data_and_model", "run_recbole_distill"]
