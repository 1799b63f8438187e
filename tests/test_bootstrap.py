"""Paired bootstrap intervals and per-user metrics: hand-computed cases, and RecBole's own means."""

import numpy as np
import pytest

from recbole_distill.benchmark.bootstrap import evaluate_per_user, paired_bootstrap
from recbole_distill.benchmark.report import append_row, read_runs, write_per_user, write_table
from recbole_distill.quick_start import prepare_run

from conftest import SLICE


def test_two_users_give_the_enumerable_interval():
    # users (0, 0): gain 0; (0, 1) or (1, 0): 0.4 / 0.2 - 1 = +100 %; (1, 1): 0.6 / 0.2 - 1 = +200 %.
    # Each extreme has probability 1/4, so the 2.5 and 97.5 percentiles are 0 and +200 % exactly.
    result = paired_bootstrap([0.2, 0.6], [0.2, 0.2], n_resamples=4000, seed=1)
    assert result == {"gain": pytest.approx(1.0), "gain_low": 0.0, "gain_high": pytest.approx(2.0)}


def test_given_resamples_and_the_teachers_share():
    student, twin, teacher = [0.3, 0.1, 0.5], [0.1, 0.1, 0.4], [0.5, 0.3, 0.7]
    resamples = np.array([[0, 1, 2], [0, 0, 0], [1, 1, 1], [2, 2, 1]])
    result = paired_bootstrap(student, twin, teacher, resamples=resamples)
    # point: means 0.3, 0.2, 0.5 -> gain +50 %, share (0.3 - 0.2) / (0.5 - 0.2) = 1/3
    assert result["gain"] == pytest.approx(0.5) and result["share"] == pytest.approx(1 / 3)
    # resamples: means (student, twin, teacher) (0.3, 0.2, 0.5), (0.3, 0.1, 0.5), (0.1, 0.1, 0.3),
    # (1.1/3, 0.9/3, 1.7/3): gains 0.5, 2, 0, 2/9 and shares 1/3, 1/2, 0, 1/4; numpy's linear percentiles
    gains, shares = [0.5, 2.0, 0.0, 2 / 9], [1 / 3, 0.5, 0.0, 0.25]
    assert result["gain_low"] == pytest.approx(np.percentile(gains, 2.5))
    assert result["gain_high"] == pytest.approx(np.percentile(gains, 97.5))
    assert result["share_low"] == pytest.approx(np.percentile(shares, 2.5))
    assert result["share_high"] == pytest.approx(np.percentile(shares, 97.5))


def test_the_same_seed_gives_the_same_interval():
    rng = np.random.default_rng(0)
    student, twin = rng.random(500), rng.random(500)
    assert paired_bootstrap(student, twin, seed=3) == paired_bootstrap(student, twin, seed=3)
    assert paired_bootstrap(student, twin, seed=3) != paired_bootstrap(student, twin, seed=4)


def test_per_user_values_average_to_recboles_result(base_config, tmp_path):
    _, _, train_data, valid_data, test_data, _, trainer = prepare_run(
        "SASRec", SLICE, config_dict={**base_config, "checkpoint_dir": str(tmp_path)}
    )
    trainer.fit(train_data, valid_data, saved=True)
    result, users, values = evaluate_per_user(trainer, test_data, "NDCG@10")
    assert len(users) == len(set(users)) == len(test_data._dataset)
    assert values.mean() == pytest.approx(result["ndcg@10"], abs=5e-5)  # RecBole rounds to 4 places
    _, _, hits = evaluate_per_user(trainer, test_data, "Hit@10")
    assert set(np.unique(hits)) <= {0.0, 1.0} and hits.mean() == pytest.approx(result["hit@10"], abs=5e-5)


def test_the_table_shows_intervals_from_the_per_user_files(tmp_path):
    users = [str(u) for u in range(6)]
    per_user = {"SASRec": [0.1, 0.2, 0.0, 0.3, 0.1, 0.1], "DLLM2RecSASRec": [0.2, 0.2, 0.1, 0.3, 0.2, 0.1],
                "TeacherRanking": [0.3, 0.4, 0.1, 0.3, 0.2, 0.3]}
    for model, values in per_user.items():
        row = {"model": model, "variant": "", "seed": 1, "test_ndcg@10": np.mean(values), "test_recall@10": 0.5,
               "valid_ndcg@10": 0.1, "seconds_per_epoch": 1.0}
        write_per_user(tmp_path, row, {"metric": "ndcg@10", "users": users, "values": values})
        append_row(tmp_path / "runs.csv", row)
    table = write_table(read_runs(tmp_path / "runs.csv"), tmp_path / "results.md")
    header, _, *lines = table.splitlines()
    assert "recall@10" not in header and "ndcg@10 vs twin [95 % CI]" in header
    distilled = next(line for line in lines if line.startswith("| DLLM2RecSASRec"))
    expected = paired_bootstrap(per_user["DLLM2RecSASRec"], per_user["SASRec"], per_user["TeacherRanking"])
    assert f"+{expected['gain'] * 100:.1f} % [{expected['gain_low'] * 100:+.1f} %, {expected['gain_high'] * 100:+.1f} %]" in distilled
    assert f"{expected['share'] * 100:.0f} % [{expected['share_low'] * 100:.0f}, {expected['share_high'] * 100:.0f} %]" in distilled


def _distilled_row(folder, runs):
    """The DLLM2RecSASRec line of the table written from ``runs``: (model, seed, per-user values of 4 users)."""
    for model, seed, values in runs:
        row = {"model": model, "variant": "", "seed": seed, "test_ndcg@10": np.mean(values),
               "valid_ndcg@10": 0.1, "seconds_per_epoch": 1.0}
        write_per_user(folder, row, {"metric": "ndcg@10", "users": ["0", "1", "2", "3"], "values": values})
        append_row(folder / "runs.csv", row)
    table = write_table(read_runs(folder / "runs.csv"), folder / "results.md")
    return next(line for line in table.splitlines() if line.startswith("| DLLM2RecSASRec"))


def test_with_unequal_seeds_the_gain_is_the_one_its_interval_pairs(tmp_path):
    runs = [("SASRec", 1, [0.1, 0.2, 0.1, 0.2]), ("SASRec", 2, [0.9, 0.9, 0.9, 0.9]),
            ("DLLM2RecSASRec", 1, [0.2, 0.2, 0.2, 0.2])]
    distilled = _distilled_row(tmp_path, runs)
    # seed 1 only: 0.2 / 0.15 - 1 = +33.3 %, not 0.2 / 0.525 - 1 over both of SASRec's seeds
    assert "| +33.3 % [" in distilled


def test_a_teacher_of_one_seed_leaves_the_pair_its_seeds(tmp_path):
    """The teacher row is one artifact; run once, it must not reduce a two-seed pair to its first seed."""
    runs = [("SASRec", 1, [0.1, 0.2, 0.1, 0.2]), ("SASRec", 2, [0.1, 0.2, 0.1, 0.2]),
            ("DLLM2RecSASRec", 1, [0.2, 0.2, 0.2, 0.2]), ("DLLM2RecSASRec", 2, [0.1, 0.1, 0.1, 0.1]),
            ("TeacherRanking", 1, [0.4, 0.4, 0.4, 0.4])]
    distilled = _distilled_row(tmp_path, runs)
    # both seeds: 0.15 / 0.15 - 1 = +0.0 %, not seed 1's +33.3 %; share (0.15 - 0.15) / (0.4 - 0.15) = 0 %
    assert "| +0.0 % [" in distilled and "| 0 % [" in distilled
