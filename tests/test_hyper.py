"""Tuning through RecBole's HyperTuning: every trial validated, none tested, best chosen on validation."""

import pytest
import yaml

from recbole_distill.errors import ConfigError
from recbole_distill.hyper import NOT_TESTED, tune, write_trials

from conftest import SLICE


def test_tuning_selects_on_validation(base_config, teacher_dir, tmp_path):
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(yaml.safe_dump({**base_config, "teacher_path": str(teacher_dir)}))
    space = tmp_path / "space.hyper"
    space.write_text("rd_weight choice [0.1,0.7]\n")
    hyper = tune("DLLM2RecGRU4Rec", SLICE, str(space), [str(fixed)])
    results = hyper.params2result
    assert len(results) == 2 and all(result["test_result"] == NOT_TESTED for result in results.values())
    best = max(results, key=lambda params: results[params]["best_valid_score"])
    assert hyper.params2str(hyper.best_params) == best
    write_trials(hyper, tmp_path / "trials.md")
    table = (tmp_path / "trials.md").read_text().splitlines()
    assert table[2].startswith(f"| {best} |") and len(table) == 4


def test_a_missing_search_space_is_named(tmp_path):
    with pytest.raises(ConfigError, match="params_file"):
        tune("DLLM2RecGRU4Rec", SLICE, str(tmp_path / "nope.hyper"))
