"""Where recbole-distill's defaults and shipped data live: a leaf module that every other one may import."""

from pathlib import Path

import recbole

PLUGIN_ROOT = Path(__file__).resolve().parent.parent
PROPERTIES_DIR = PLUGIN_ROOT / "properties"
DATASET_DIR = PLUGIN_ROOT / "dataset"
RECBOLE_PROPERTIES_DIR = Path(recbole.__file__).parent / "properties"
