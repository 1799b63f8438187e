"""RecBole's DistributedDataParallel path on the CPU: two gloo processes against one process."""

import socket

import pytest

from recbole_distill.errors import ConfigError
from recbole_distill.quick_start import run

from conftest import SLICE

# One full batch per epoch and no dropout: one process and two processes then take the same gradient
# steps (the mean loss over all training samples), whatever order the samplers draw them in.
FULL_BATCH = {
    "train_batch_size": 65536,
    "epochs": 3,
    "learning_rate": 0.01,
    "hidden_dropout_prob": 0.0,
    "attn_dropout_prob": 0.0,
}
# Absolute, on every test metric. The evaluation itself shards exactly (equal metrics without training,
# the first case below); summing gradients in another order moves a target by a place for a user or two
# of the slice's 80 (measured: MRR@10 0.0072 vs 0.0081, NDCG@10 0.0142 vs 0.0148).
TOLERANCE = 5e-3


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


# Untrained, the sharded evaluation must give one process's metrics exactly, with each user's history left out
# (the slice's default; it changes the metrics here: MRR@10 0.025 against 0.0188 without it). Trained, the two runs'
# weights differ in the last bits; with history left out one user of the 80 crossed the @20 boundary (recall@20
# 0.0625 against 0.075), past the tolerance, so that case ranks as RecBole does.
@pytest.mark.parametrize("epochs, tolerance, exclude_history", [(0, 0.0, None), (FULL_BATCH["epochs"], TOLERANCE, False)])
def test_two_processes_give_the_metrics_of_one(base_config, teacher_dir, tmp_path, epochs, tolerance, exclude_history):
    config = {**base_config, **FULL_BATCH, "epochs": epochs, "teacher_path": str(teacher_dir), "checkpoint_dir": str(tmp_path),
              "eval_exclude_history": exclude_history}
    single = run("DLLM2RecSASRec", SLICE, config_dict=dict(config))
    double = run("DLLM2RecSASRec", SLICE, config_dict=dict(config), nproc=2, port=_free_port())
    assert double is not None, "rank 0 returned no result"
    assert double["test_result"].keys() == single["test_result"].keys()
    for metric, value in single["test_result"].items():
        assert double["test_result"][metric] == pytest.approx(value, abs=tolerance), metric


def test_a_bad_input_in_the_ranks_is_one_clear_error(base_config, teacher_dir):
    config = {**base_config, "teacher_path": str(teacher_dir), "teacher_k": 500}
    with pytest.raises(ConfigError, match="teacher_k"):
        run("DLLM2RecSASRec", SLICE, config_dict=config, nproc=2, port=_free_port())


def test_minibert_trains_on_two_processes(base_config, teacher_dir, tmp_path):
    config = {**base_config, "teacher_path": str(teacher_dir), "kd_teacher": "artifact", "checkpoint_dir": str(tmp_path)}
    result = run("MiniBERT", SLICE, config_dict=config, nproc=2, port=_free_port())
    assert result["test_result"]["ndcg@10"] >= 0 and "recall@20" in result["test_result"]
    assert len(list(tmp_path.glob("MiniBERT-*.pth"))) == 1  # rank 0 alone writes the checkpoint
