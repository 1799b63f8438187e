"""The benchmark command: end to end on the slice, resume, and the table's arithmetic."""

import csv
import json
import subprocess
import sys

import pytest

from recbole_distill.benchmark.report import append_row, plain_twin, read_runs, summarise, write_table

from conftest import SLICE, TINY


def row(model, seed, ndcg, seconds):
    return {
        "model": model, "seed": seed, "test_ndcg@10": ndcg, "test_hit@10": 2 * ndcg, "test_ndcg@20": ndcg,
        "test_hit@20": ndcg, "test_mrr@10": ndcg, "seconds_per_epoch": seconds,
        "inference_seconds_per_1000_users": 0.1, "parameters": 1000, "peak_memory_mb": 500, "checkpoint": "x.pth",
    }


def test_table_means_stds_and_gains(tmp_path):
    runs = tmp_path / "runs.csv"
    for r in [row("SASRec", 1, 0.04, 10), row("SASRec", 2, 0.06, 12), row("DLLM2RecSASRec", 1, 0.06, 11),
              row("DLLM2RecSASRec", 2, 0.066, 12.1)]:
        append_row(runs, r)
    summary = summarise(read_runs(runs))
    assert summary["SASRec"]["test_ndcg@10"] == pytest.approx((0.05, 0.0141421356))  # sample std
    assert summary["DLLM2RecSASRec"]["test_ndcg@10"][0] == pytest.approx(0.063)
    table = write_table(read_runs(runs), tmp_path / "results.md")
    distilled = next(line for line in table.splitlines() if line.startswith("| DLLM2RecSASRec"))
    assert "+26.0 %" in distilled  # 0.063 / 0.05 - 1
    assert "1.05 x" in distilled  # 11.55 / 11
    assert plain_twin("DLLM2RecBERT4Rec") == "BERT4Rec" and plain_twin("GRU4Rec") is None
    assert plain_twin("MiniBERT") == "BERT4Rec" and plain_twin("PreBERT") is None


def test_benchmark_runs_and_resumes(base_config, teacher_dir, tmp_path):
    flags = [f"--{key}={json.dumps(value) if isinstance(value, dict) else value}" for key, value in base_config.items()]
    command = [
        sys.executable, "-m", "recbole_distill.benchmark", f"--dataset={SLICE}", "--models=SASRec,DLLM2RecSASRec",
        "--seeds=7", f"--output={tmp_path / 'out'}", f"--teacher_path={teacher_dir}", *flags,
    ]
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, text=True)
    with open(tmp_path / "out" / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["SASRec", "DLLM2RecSASRec"]
    assert all(int(r["seed"]) == 7 and int(r["epochs"]) == TINY["epochs"] for r in rows)
    assert all(float(r["seconds_per_epoch"]) > 0 and float(r["inference_seconds_per_1000_users"]) > 0 for r in rows)
    assert "DLLM2RecSASRec" in (tmp_path / "out" / "results.md").read_text()

    again = subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, text=True)
    assert "2 finished run(s)" in again.stdout and "0 to go" in again.stdout
    assert len(read_runs(tmp_path / "out" / "runs.csv")) == 2
