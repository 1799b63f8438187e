"""Where recbole-distill's defaults and shipped data live: a leaf module that every other one may import.

In a checkout (or an editable install) they are the top-level ``properties/`` and ``dataset/`` folders; a
wheel carries the same folders inside the package (``setup.py`` maps them there).
"""

from pathlib import Path

import recbole

PACKAGE_DIR = Path(__file__).resolve().parent
PLUGIN_ROOT = PACKAGE_DIR if (PACKAGE_DIR / "properties").is_dir() else PACKAGE_DIR.parent
PROPERTIES_DIR = PLUGIN_ROOT / "properties"
DATASET_DIR = PLUGIN_ROOT / "dataset"
RECBOLE_PROPERTIES_DIR = Path(recbole.__file__).parent / "properties"
RECBOLE_DATASET_EXAMPLES = Path(recbole.__file__).parent / "dataset_example"
