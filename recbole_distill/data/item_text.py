"""Item text for teachers that read it: one line per item, from the dataset's ``.item`` atomic file."""

import re
import string
from pathlib import Path

import pandas as pd

from recbole_distill.errors import ConfigError, RecBoleDistillError


# MovieLens writes titles library-style, the article last ("Usual Suspects, The", "Haine, La")
_TRAILING_ARTICLE = re.compile(r"^(.*), (The|A|An|La|Le|Les|L'|Il|Das|Der|Die|El)$")


def article_first(value):
    """``"Usual Suspects, The"`` as a reader writes it, ``"The Usual Suspects"``; other text unchanged."""
    match = _TRAILING_ARTICLE.match(value)
    if not match:
        return value
    title, article = match.groups()
    return article + title if article.endswith("'") else f"{article} {title}"


def read_item_text(config, items, template=None, articles_first=False):
    """Text of each item token in ``items``, built from ``<data_path>/<dataset>.item``.

    ``template`` (config key ``item_text_template``) is a ``str.format`` pattern over the item file's
    columns, e.g. ``"{movie_title} ({release_year}), genres: {class}"``; without one, every column but the
    item id is joined with ", ". With ``articles_first`` every field written article-last (MovieLens'
    ``"Shining, The"``) is written article-first (``"The Shining"``), as a language model reads titles.
    Items missing from the file are an error.
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
    rows = frame.to_dict("records")
    if articles_first:
        rows = [{key: article_first(value) for key, value in row.items()} for row in rows]
    text = {row[id_field]: " ".join(template.format(**row).split()) for row in rows}
    missing = [token for token in items if token not in text]
    if missing:
        raise RecBoleDistillError(f"{len(missing)} item(s) have no row in '{path}' (first: '{missing[0]}').")
    return [text[token] for token in items]
