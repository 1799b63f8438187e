"""The benchmark command: end to end on the slice, resume, variants, and the table's arithmetic."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recbole_distill.benchmark.__main__ import plan
from recbole_distill.benchmark.report import append_row, plain_twin, read_runs, summarise, write_plots, write_table

from conftest import SLICE, TINY
from test_resume import stop_in_epoch


def row(model, seed, ndcg, seconds, variant=""):
    return {
        "model": model, "variant": variant, "seed": seed, "test_ndcg@10": ndcg, "test_hit@10": 2 * ndcg, "test_ndcg@20": ndcg,
        "test_hit@20": ndcg, "test_mrr@10": ndcg, "valid_ndcg@10": ndcg, "seconds_per_epoch": seconds,
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
    assert plain_twin("TeacherRanking") is None


def test_epoch_time_vs_twin_uses_the_seeds_both_have(tmp_path):
    runs = tmp_path / "runs.csv"
    for r in [row("BERT4Rec", 1, 0.05, 10), row("BERT4Rec", 2, 0.05, 20), row("DLLM2RecBERT4Rec", 1, 0.05, 19)]:
        append_row(runs, r)
    distilled = next(line for line in write_table(read_runs(runs), tmp_path / "results.md").splitlines()
                     if line.startswith("| DLLM2RecBERT4Rec"))
    assert distilled.endswith("| 1.90 x |")  # 19 / 10 on seed 1, not 19 / 15 over both twin seeds


def test_variants_and_the_teacher_row(tmp_path):
    runs = tmp_path / "runs.csv"
    for r in [row("GRU4Rec", 1, 0.05, 10), row("DLLM2RecGRU4Rec", 1, 0.06, 11),
              row("DLLM2RecGRU4Rec", 1, 0.045, 10.5, variant="no_ranking_distillation"), row("TeacherRanking", 1, 0.08, 1)]:
        append_row(runs, r)
    lines = {line.split(" | ")[0][2:]: line for line in write_table(read_runs(runs), tmp_path / "results.md").splitlines()}
    # gain 0.06 / 0.05 - 1; the teacher's lead recovered (0.06 - 0.05) / (0.08 - 0.05)
    assert "| +20.0 % | 33 % |" in lines["DLLM2RecGRU4Rec"]
    assert "| -10.0 % | -17 % |" in lines["DLLM2RecGRU4Rec[no_ranking_distillation]"]
    write_plots(read_runs(runs), tmp_path)
    for name in ("quality.png", "quality_vs_inference.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # plugin students run once per variant, RecBole's models and the teacher once
    variants = {"default": {}, "no_rd": {"rd_weight": 0}}
    assert plan(["GRU4Rec", "DLLM2RecGRU4Rec", "TeacherRanking"], [1], variants) == [
        ("GRU4Rec", "", 1), ("DLLM2RecGRU4Rec", "default", 1), ("DLLM2RecGRU4Rec", "no_rd", 1), ("TeacherRanking", "", 1)]


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
    assert (tmp_path / "out" / "quality.png").stat().st_size > 0 and (tmp_path / "out" / "quality_vs_inference.png").is_file()

    again = subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, text=True)
    assert "2 finished run(s)" in again.stdout and "0 to go" in again.stdout
    assert len(read_runs(tmp_path / "out" / "runs.csv")) == 2


def test_benchmark_variants_and_teacher_on_the_slice(base_config, teacher_dir, tmp_path):
    variants = tmp_path / "variants.yaml"
    variants.write_text("no_ranking_distillation: {rd_weight: 0}\nteacher_k=5: {teacher_k: 5}\n")
    flags = [f"--{key}={json.dumps(value) if isinstance(value, dict) else value}" for key, value in base_config.items()]
    subprocess.run(
        [sys.executable, "-m", "recbole_distill.benchmark", f"--dataset={SLICE}", "--models=DLLM2RecGRU4Rec,TeacherRanking",
         "--seeds=7", f"--output={tmp_path / 'out'}", f"--teacher_path={teacher_dir}", f"--variants={variants}", *flags],
        cwd=tmp_path, check=True, capture_output=True, text=True,
    )
    rows = read_runs(tmp_path / "out" / "runs.csv")
    assert [(r["model"], r["variant"]) for r in rows] == [
        ("DLLM2RecGRU4Rec", "no_ranking_distillation"), ("DLLM2RecGRU4Rec", "teacher_k=5"), ("TeacherRanking", "")]
    teacher = rows[-1]
    assert float(teacher["test_ndcg@10"]) > 0 and teacher["inference_seconds_per_1000_users"] == ""
    assert "TeacherRanking" in (tmp_path / "out" / "results.md").read_text()


def _children(pid):
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            children.append(int(status.parent.name))
    return children


def test_stopping_the_benchmark_stops_its_run(base_config, tmp_path):
    flags = [f"--{key}={json.dumps(value) if isinstance(value, dict) else value}" for key, value in base_config.items()]
    benchmark = subprocess.Popen(
        [sys.executable, "-m", "recbole_distill.benchmark", f"--dataset={SLICE}", "--models=SASRec", "--seeds=7",
         f"--output={tmp_path / 'out'}", *flags],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while not (run := _children(benchmark.pid)) and time.time() < deadline:
        time.sleep(0.2)
    assert run, "the benchmark started no run"
    benchmark.send_signal(signal.SIGTERM)
    assert benchmark.wait(timeout=30) != 0 and "a rerun resumes" in benchmark.stderr.read()
    time.sleep(0.5)
    assert not Path(f"/proc/{run[0]}").exists() or "zombie" in Path(f"/proc/{run[0]}/status").read_text()
    assert read_runs(tmp_path / "out" / "runs.csv") == []


# ~50 s; by default, test_resume covers a mid-epoch stop and test_benchmark_runs_and_resumes the benchmark's resume
@pytest.mark.slow
def test_a_benchmark_stopped_mid_run_resumes_that_run(base_config, teacher_dir, tmp_path):
    # small batches make an epoch last a few seconds, so the stop lands inside the run
    config = {**base_config, "train_batch_size": 64, "epochs": 4, "stopping_step": 10, "teacher_path": str(teacher_dir)}
    config.pop("checkpoint_dir")
    flags = [f"--{key}={json.dumps(value) if isinstance(value, dict) else value}" for key, value in config.items()]

    def command(output):
        return [sys.executable, "-m", "recbole_distill.benchmark", f"--dataset={SLICE}", "--models=DLLM2RecGRU4Rec",
                "--seeds=7", f"--output={output}", *flags]

    subprocess.run(command(tmp_path / "whole"), cwd=tmp_path, check=True, capture_output=True)
    benchmark = subprocess.Popen(command(tmp_path / "out"), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_folder = tmp_path / "out" / "checkpoints" / "DLLM2RecGRU4Rec-7"
    stop_in_epoch(benchmark, run_folder, 2, signal.SIGTERM)
    assert read_runs(tmp_path / "out" / "runs.csv") == []

    subprocess.run(command(tmp_path / "out"), cwd=tmp_path, check=True, capture_output=True)
    [whole], [resumed] = read_runs(tmp_path / "whole" / "runs.csv"), read_runs(tmp_path / "out" / "runs.csv")
    assert {k: v for k, v in resumed.items() if k.startswith(("test_", "valid_"))} == {
        k: v for k, v in whole.items() if k.startswith(("test_", "valid_"))}
    assert resumed["epochs"] == whole["epochs"] == "4"  # the epochs before the stop count too
    assert not list(run_folder.glob("*-resume.pth"))  # removed once the run finished
