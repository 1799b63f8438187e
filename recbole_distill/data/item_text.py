"""Item text for teachers that read it: one line per item, from the dataset's ``.item`` atomic file."""

import string
from pathlib import Path

import pandas as pd

from recbole_distill.errors import ConfigError, RecBoleDistillError


def read_item_text(config, items, template=None):
    """Text of each item token in ``items``, built from ``<data_path>/<dataset>.item``.

    ``template`` (config key ``item_text_template``) is a ``str.format`` pattern over the item file's
    columns, e.g. ``"{movie_title} ({release_year}), genres: {class}"``; without one, every column but the
    item id is joined with ", ". Items missing from the file are an error.
    """
    path = Path(config["data_path"]) / f"{config['dataset']}.item"
    if not path.is_file():
        raise RecBoleDistillError(f"item text needs the atomic file '{path}', which does not exist.")
    frame = pd.read_csv(path, sep=config["field_separator"], dtype=str, keep_default_na=False, encoding="utf-8")
    frame.columns = [column.split(":")[0] for column in frame.columns]
    id_field = config["ITEM_ID_FIELD"]
    columns = [column for column in frame.columns if column != id_field]
    if template is None:
        template = ", ".join(f"{{{column}}}" for column in columns)
    unknown = {name for _, name, _, _ in string.Formatter().parse(template) if name} - set(frame.columns)
    if unknown:
        raise ConfigError("item_text_template", template, f"fields among the columns of {path.name}: {columns}")
    text = {row[id_field]: " ".join(template.format(**row).split()) for row in frame.to_dict("records")}
    missing = [token for token in items if token not in text]
    if missing:
        raise RecBoleDistillError(f"{len(missing)} item(s) have no row in '{path}' (first: '{missing[0]}').")
    return [text[token] for token in items]
