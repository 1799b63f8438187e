"""Serving: exported students give the checkpoint's own top-N, recommend() checks its input, latency runs."""

import subprocess
import sys

import numpy as np
import pytest

from recbole_distill import run_recbole_distill
from recbole_distill.benchmark.latency import latency_benchmark
from recbole_distill.serving import Recommender
from recbole_distill.serving.export import export_for_serving

from conftest import SLICE, checkpoint_top_n

pytest.importorskip("onnxruntime", reason="pip install onnx onnxruntime onnxscript")
N = 20
STUDENTS = ["DLLM2RecSASRec", "DLLM2RecGRU4Rec", "DLLM2RecBERT4Rec", "MiniBERT", "SASRec", "GRU4Rec", "BERT4Rec"]


@pytest.fixture(scope="module")
def checkpoints(base_config, teacher_dir, tmp_path_factory):
    saved = tmp_path_factory.mktemp("serving_saved")
    config = {**base_config, "checkpoint_dir": str(saved), "teacher_path": str(teacher_dir), "kd_teacher": "artifact"}
    for model in STUDENTS:
        run_recbole_distill(model=model, dataset=SLICE, config_dict=config)
    return {model: next(saved.glob(f"{model}-*.pth")) for model in STUDENTS}


@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    return {model: (export_for_serving(file, root / model, n=N), root / model) for model, file in checkpoints.items()}


@pytest.mark.parametrize("model", STUDENTS)
def test_exports_give_the_checkpoints_top_n_on_every_test_user(model, checkpoints, exported):
    meta, folder = exported[model]
    assert meta["formats"] == ["torchscript", "onnx"] and (folder / "recommend.py").is_file()
    item_seq, item_seq_len, scores, ids = checkpoint_top_n(checkpoints[model], N)
    for backend in ("torchscript", "onnx"):
        got_scores, got_ids = Recommender(folder, backend).top_ids(item_seq, item_seq_len)
        assert np.array_equal(got_ids, ids), backend
        assert np.allclose(got_scores, scores, atol=1e-4), backend


def test_the_folder_serves_without_recbole_or_the_teacher(exported, tmp_path):
    """The folder alone, copied elsewhere, in a process where RecBole cannot be imported."""
    _, folder = exported["DLLM2RecSASRec"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in folder.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    history = Recommender(folder).items[1:4]
    code = (
        "import sys; sys.modules['recbole'] = sys.modules['recbole_distill'] = None; sys.path.insert(0, sys.argv[1]);"
        "from recommend import Recommender;"
        "print([Recommender(sys.argv[1], b).recommend(sys.argv[2:], n=5)[0][0] for b in ('onnx', 'torchscript')])"
    )
    result = subprocess.run([sys.executable, "-c", code, str(copy), *history], capture_output=True, text=True, check=True)
    first = Recommender(folder).recommend(history, n=5)[0][0]
    assert result.stdout.strip() == str([first, first])


def test_recommend_answers_known_tokens_and_rejects_bad_input(exported):
    recommender = Recommender(exported["DLLM2RecBERT4Rec"][1])
    history = recommender.items[1:30]  # longer than the history length: the most recent items count
    answer = recommender.recommend(history, n=10)
    assert len(answer) == 10 and all(token in recommender.item_id for token, _ in answer)
    assert [score for _, score in answer] == sorted((score for _, score in answer), reverse=True)
    assert recommender.recommend(history, n=3) == answer[:3]
    with pytest.raises(ValueError, match=r"item token\(s\) \['no-such-movie'\] of history 0 are not in the model's catalogue"):
        recommender.recommend(["no-such-movie", history[0]])
    with pytest.raises(ValueError, match="history 0 is empty"):
        recommender.recommend([])
    with pytest.raises(ValueError, match=f"at most {N} items"):
        recommender.recommend(history, n=N + 1)


def test_recommend_command_line(exported):
    _, folder = exported["SASRec"]
    command = [sys.executable, str(folder / "recommend.py"), "--n=3", *Recommender(folder).items[1:3]]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(lines) == 3 and all(len(line.split("\t")) == 2 for line in lines)
    failed = subprocess.run([*command[:3], "no-such-movie"], capture_output=True, text=True)
    assert failed.returncode == 1 and "no-such-movie" in failed.stderr and "Traceback" not in failed.stderr


def test_latency_benchmark_writes_its_table(checkpoints, exported, tmp_path):
    rows = latency_benchmark(checkpoints["DLLM2RecSASRec"], checkpoints["BERT4Rec"], requests=50,
                             output=tmp_path / "latency", serving_folder=exported["DLLM2RecSASRec"][1])
    assert [row["engine"] for row in rows] == ["eager", "torchscript", "onnxruntime", "teacher (eager)"]
    assert all(row["requests"] == 50 and 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] for row in rows)
    table = (tmp_path / "latency.md").read_text()
    assert "| onnxruntime | DLLM2RecSASRec |" in table and "teacher p99 / this p99" in table
    assert (tmp_path / "latency.csv").read_text().startswith("engine,model,requests,p50_ms")
