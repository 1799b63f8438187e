"""Resuming a killed run, atomic checkpoints, and the same seed giving the same metrics."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import recbole
import torch
import yaml

from recbole_distill import load_data_and_model, run_recbole_distill
from recbole_distill.errors import RecBoleDistillError

from conftest import SLICE

SCRIPT = Path(__file__).resolve().parent.parent / "run_recbole_distill.py"
# small batches make an epoch last a few seconds, so the kill lands inside one
RESUMABLE = {"train_batch_size": 64, "epochs": 4, "stopping_step": 10}


def _epoch_of(resume_file):
    try:
        return torch.load(resume_file, map_location="cpu")["epoch"] + 1
    except (OSError, EOFError, RuntimeError):
        return -1


def stop_in_epoch(process, folder, epoch, signal_number):
    """Send ``signal_number`` to ``process`` once the resume state it keeps in ``folder`` says ``epoch`` has started."""
    try:
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            resume_files = list(Path(folder).glob("*-resume.pth"))
            if resume_files and _epoch_of(resume_files[0]) == epoch:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be stopped"
        process.send_signal(signal_number)
        process.wait(timeout=60)
    finally:
        process.kill()


def test_a_run_killed_mid_epoch_resumes_to_the_same_metrics(base_config, teacher_dir, tmp_path):
    config = {**base_config, **RESUMABLE, "teacher_path": str(teacher_dir)}
    uninterrupted = run_recbole_distill("DLLM2RecGRU4Rec", SLICE, config_dict={**config, "checkpoint_dir": str(tmp_path / "a")})

    saved = tmp_path / "b"
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump({**config, "checkpoint_dir": str(saved)}))
    command = [sys.executable, str(SCRIPT), "--model=DLLM2RecGRU4Rec", f"--dataset={SLICE}", f"--config_files={config_file}"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop_in_epoch(process, saved, 2, signal.SIGKILL)

    [resume_file] = saved.glob("*-resume.pth")
    [best_file] = [f for f in saved.glob("*.pth") if f != resume_file]
    assert not list(saved.glob(".*")), "a temporary file was left: a checkpoint was being written"
    assert torch.load(best_file, map_location="cpu")["epoch"] <= 1  # a whole checkpoint of an earlier epoch

    resumed = run_recbole_distill(resume_file=str(resume_file))
    assert resumed["test_result"] == uninterrupted["test_result"]
    assert resumed["best_valid_result"] == uninterrupted["best_valid_result"]
    assert not resume_file.exists()  # removed once training finished


def test_resume_refuses_a_model_checkpoint_and_a_missing_file(base_config, teacher_dir, tmp_path):
    run_recbole_distill("SASRec", SLICE, config_dict={**base_config, "checkpoint_dir": str(tmp_path)})
    [checkpoint] = tmp_path.glob("SASRec-*.pth")  # a finished run keeps no resume state
    with pytest.raises(RecBoleDistillError, match="a model checkpoint, not a resume state"):
        run_recbole_distill(resume_file=str(checkpoint))
    with pytest.raises(RecBoleDistillError, match="does not exist"):
        run_recbole_distill(resume_file=str(tmp_path / "nothing-resume.pth"))


def test_the_same_seed_gives_the_same_metrics_twice(base_config, teacher_dir, tmp_path):
    config = {**base_config, "teacher_path": str(teacher_dir), "epochs": 2, "checkpoint_dir": str(tmp_path)}
    first = run_recbole_distill("DLLM2RecSASRec", SLICE, config_dict=config)
    second = run_recbole_distill("DLLM2RecSASRec", SLICE, config_dict=config)
    assert first == second
    assert first["test_result"]["ndcg@10"] > 0


def test_a_checkpoint_from_another_machine_finds_its_data_here(base_config, tmp_path):
    """Checkpoints name their data folder by the writing machine's absolute path (for ml-100k, inside its recbole
    install): a committed resume state or checkpoint must still load where the data set lives elsewhere."""
    run_recbole_distill("SASRec", "ml-100k", config_dict={**base_config, "checkpoint_dir": str(tmp_path)})
    [checkpoint] = tmp_path.glob("SASRec-*.pth")
    moved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    moved["config"]["data_path"] = "/another/machine/site-packages/recbole/dataset_example/ml-100k"
    torch.save(moved, tmp_path / "moved.pth")
    config, _, dataset, _, _, _ = load_data_and_model(str(tmp_path / "moved.pth"))
    assert Path(config["data_path"]) == Path(recbole.__file__).parent / "dataset_example" / "ml-100k"
    assert dataset.user_num - 1 == 943  # ml-100k itself, loaded from this install

    run_recbole_distill("SASRec", SLICE, config_dict={**base_config, "checkpoint_dir": str(tmp_path / "slice")})
    [checkpoint] = (tmp_path / "slice").glob("SASRec-*.pth")
    moved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    moved["config"]["data_path"] = f"/another/machine/data/{SLICE}"
    torch.save(moved, tmp_path / "moved-slice.pth")
    with pytest.raises(RecBoleDistillError, match=f"was trained on {SLICE} in '/another/machine/data/{SLICE}', which this machine"):
        load_data_and_model(str(tmp_path / "moved-slice.pth"))


def test_a_checkpoint_saved_before_a_key_existed_reads_its_default(base_config, teacher_dir, tmp_path):
    """A resume state written before ``rd_likelihood`` existed resumed with ``None`` and failed in its first step."""
    config = {**base_config, "teacher_path": str(teacher_dir), "epochs": 1, "checkpoint_dir": str(tmp_path)}
    run_recbole_distill("DLLM2RecGRU4Rec", SLICE, config_dict={**config, "rd_gammas": [1, 0, 0]})
    [checkpoint] = tmp_path.glob("DLLM2RecGRU4Rec-*.pth")
    old = torch.load(checkpoint, map_location="cpu", weights_only=False)
    del old["config"].final_config_dict["rd_likelihood"]
    torch.save(old, tmp_path / "old.pth")

    config, model, *_ = load_data_and_model(str(tmp_path / "old.pth"))
    assert config["rd_likelihood"] == model.rd_likelihood == "sigmoid"  # DLLM2Rec.yaml's default
    assert config["rd_gammas"] == [1, 0, 0]  # what the run was given stays
