"""The default command on full ml-100k with the shipped teacher, shrunk by flags only."""

import subprocess
import sys
from pathlib import Path

import yaml

from recbole_distill.data.artifacts import TeacherArtifacts
from recbole_distill.data.dataset import default_teacher_path

from conftest import SLICE

SCRIPT = Path(__file__).resolve().parent.parent / "run_recbole_distill.py"
SHRINK = ["--epochs=1", "--MAX_ITEM_LIST_LENGTH=5", "--n_layers=1", "--hidden_size=16", "--inner_size=32",
          "--train_batch_size=4096", "--show_progress=False"]


def test_shipped_teacher_is_complete():
    teacher = TeacherArtifacts(default_teacher_path("ml-100k"))
    assert teacher.meta["dataset"] == "ml-100k"
    assert teacher.ranking()[2].shape[1] == teacher.meta["ranking"]["k"] >= 10
    assert teacher.item_embeddings().shape == (1682, teacher.meta["embedding"]["dim"])
    ranking = teacher.meta["ranking"]
    assert ranking["teacher"].startswith("LLMEnhancedSASRec checkpoint") and ranking["trained_with"]["model"] == "LLMEnhancedSASRec"
    assert ranking["exclude_history"] is True  # history-free top-K, as ml-100k has no repeated (user, item) pair
    # the teacher's own test metrics, RecBole's and history-free (what TeacherRanking replays)
    assert ranking["test_result_without_history"]["ndcg@10"] > ranking["test_result"]["ndcg@10"] > 0
    for part in ("ranking", "embedding"):
        assert teacher.meta[part]["command"].startswith("python ")  # how it was built, re-runnable


def test_default_command_trains_and_tests_dllm2recsasrec(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), *SHRINK], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "DLLM2RecSASRec" in log and "Teacher rankings joined: train 97171/97171" in log
    assert "rec_loss" in log and "rd_loss" in log
    assert "test result" in log and "ndcg@10" in log
    assert list((tmp_path / "saved").glob("DLLM2RecSASRec-*.pth"))


def test_a_bad_flag_is_one_clear_line_not_a_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--rd_weight=-1", *SHRINK], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "recbole-distill: error: config key 'rd_weight' = -1" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_model_and_dataset_of_a_config_file_are_the_ones_trained(base_config, tmp_path):
    config_file = tmp_path / "my.yaml"
    config_file.write_text(yaml.safe_dump({**base_config, "model": "GRU4Rec", "dataset": SLICE, "epochs": 1}))
    for flags, trained in (([], "GRU4Rec"), (["--model=SASRec"], "SASRec")):  # the command line still wins
        out = subprocess.run([sys.executable, str(SCRIPT), f"--config_files={config_file}", *flags],
                             cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f" {trained}(\n" in out.stdout + out.stderr  # the model RecBole built and logged
