"""LLMEnhancedSASRec: the whole-window loss, window sampling, one-pass export, and a student learning from it."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recbole_distill import Config, create_dataset, run_recbole_distill
from recbole_distill.data.artifacts import TeacherArtifacts
from recbole_distill.data.dataset import TARGET_POS, TeacherSequentialDataset
from recbole_distill.errors import ConfigError, TeacherArtifactError
from recbole_distill.model.layers import CollaborativeItemEmbedding
from recbole_distill.model.sequential_recommender import LLMEnhancedSASRec
from recbole_distill.quick_start import load_data_and_model
from recbole_distill.teacher.export import export_teacher, rank_samples, rank_windows

from conftest import SLICE


@pytest.fixture(scope="module")
def teacher_config(base_config, teacher_dir):
    # the conftest teacher folder carries MiniLM item-text embeddings of the slice
    return {**base_config, "item_text_embedding_path": str(teacher_dir), "MAX_ITEM_LIST_LENGTH": 50}


def build(config_dict, **overrides):
    config = Config(model="LLMEnhancedSASRec", dataset=SLICE, config_dict={**config_dict, **overrides})
    dataset = create_dataset(config)
    datasets = dataset.build()
    return config, dataset, datasets


def test_training_keeps_one_sample_per_window(teacher_config):
    config, dataset, (train, valid, test) = build(teacher_config)
    length = config["MAX_ITEM_LIST_LENGTH"]
    # per user, the windows tile the training targets 1..T back from T: ceil(T / length) of them
    last = {}
    for user, pos in zip(valid.inter_feat[dataset.uid_field].tolist(), valid.inter_feat[TARGET_POS].tolist()):
        last[user] = pos - 1
    assert len(train) == sum(-(-t // length) for t in last.values())
    ends = train.inter_feat
    for user, pos in zip(ends[dataset.uid_field].tolist(), ends[TARGET_POS].tolist()):
        assert (last[user] - pos) % length == 0
    # valid and test keep every sample, as for any RecBole model
    assert len(valid) == len(test) == len(last)


def test_the_loss_is_cross_entropy_at_every_position_of_the_window(teacher_config):
    config, dataset, (train, _, _) = build(teacher_config)
    model = LLMEnhancedSASRec(config, train).eval()  # no dropout: the loss is deterministic
    assert isinstance(model.item_embedding, CollaborativeItemEmbedding)
    batch = train.inter_feat[:4]
    item_seq, lengths, targets = batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN], batch[model.POS_ITEM_ID]
    hidden = model.encode(item_seq)
    table = model.item_embedding.weight
    terms = []
    for row in range(4):  # position j predicts the item after it: the next history item, at the end the target
        sequence = item_seq[row, : lengths[row]].tolist() + [targets[row].item()]
        for j in range(lengths[row]):
            logits = hidden[row, j] @ table.T
            terms.append(-F.log_softmax(logits, dim=0)[sequence[j + 1]])
    assert model.calculate_loss(batch).item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)
    # what the language model adds is switchable: without it the items are ID embeddings only
    plain = LLMEnhancedSASRec(Config(model="LLMEnhancedSASRec", dataset=SLICE,
                                     config_dict={**teacher_config, "item_text_weight": 0}), train)
    assert isinstance(plain.item_embedding, torch.nn.Embedding)


def test_training_lowers_the_loss(teacher_config, tmp_path):
    result = run_recbole_distill(model="LLMEnhancedSASRec", dataset=SLICE, config_dict={
        **teacher_config, "epochs": 8, "train_batch_size": 16, "checkpoint_dir": str(tmp_path)})
    config, model, _, train_data, _, _ = load_data_and_model(next(tmp_path.glob("LLMEnhancedSASRec-*.pth")))
    untrained = LLMEnhancedSASRec(config, train_data._dataset).eval()
    model.eval()
    batch = train_data._dataset.inter_feat[:64]
    with torch.no_grad():
        assert model.calculate_loss(batch) < 0.95 * untrained.calculate_loss(batch)  # uniform: ln(1,446) = 7.28
    assert result["best_valid_result"]["ndcg@10"] > 0


def test_one_pass_export_equals_one_ranking_per_sample_when_the_window_holds_the_history(teacher_config, tmp_path):
    config_dict = {**teacher_config, "MAX_ITEM_LIST_LENGTH": 120, "checkpoint_dir": str(tmp_path)}
    run_recbole_distill(model="LLMEnhancedSASRec", dataset=SLICE, config_dict=config_dict)
    checkpoint = next(tmp_path.glob("LLMEnhancedSASRec-*.pth"))
    _, model, _, train_data, _, _ = load_data_and_model(checkpoint, TeacherSequentialDataset, {"train_windows": False})
    train = train_data._dataset
    # the users whose whole history fits one window: there a window's positions see what each sample sees
    feat = train.inter_feat
    last = np.zeros(train.user_num, dtype=np.int64)
    np.maximum.at(last, feat[train.uid_field].numpy(), feat[TARGET_POS].numpy())
    short = train.copy(feat[torch.from_numpy(np.flatnonzero(last[feat[train.uid_field].numpy()] < 120))])
    assert len(short) > 1000
    for exclude in (False, True):
        windows = rank_windows(model, short, 20, 64, show_progress=False, exclude_history=exclude)
        samples = rank_samples(model, short, 20, 64, show_progress=False, exclude_history=exclude)
        assert np.array_equal(windows[0], samples[0])
        assert np.allclose(windows[1], samples[1], atol=1e-5) and np.allclose(windows[2], samples[2], atol=1e-5)


def test_export_ranks_every_sample_and_a_student_learns_from_it(teacher_config, tmp_path):
    config_dict = {**teacher_config, "MAX_ITEM_LIST_LENGTH": 30, "checkpoint_dir": str(tmp_path / "saved")}
    run_recbole_distill(model="LLMEnhancedSASRec", dataset=SLICE, config_dict=config_dict)
    checkpoint = next((tmp_path / "saved").glob("LLMEnhancedSASRec-*.pth"))
    export_teacher(checkpoint, tmp_path / "teacher", k=20, show_progress=False)
    teacher = TeacherArtifacts(tmp_path / "teacher")
    _, samples, topk, _, _ = teacher.ranking()
    assert (topk[:, 0] >= 0).all()  # every train / valid / test sample ranked, windows of 30 included
    assert teacher.meta["embedding"]["dim"] == teacher_config["hidden_size"]  # the fused item table
    result = run_recbole_distill(model="DLLM2RecSASRec", dataset=SLICE,
                                 config_dict={**teacher_config, "MAX_ITEM_LIST_LENGTH": 10, "teacher_path": str(tmp_path / "teacher"),
                                              "checkpoint_dir": str(tmp_path / "student")})
    assert result["test_result"].keys() >= {"ndcg@10", "hit@10"}
    replay = run_recbole_distill(model="TeacherRanking", dataset=SLICE,
                                 config_dict={**teacher_config, "teacher_path": str(tmp_path / "teacher")})
    assert replay["test_result"] == teacher.meta["ranking"]["test_result_without_history"]


def test_bad_config_and_missing_item_text(teacher_config, tmp_path):
    with pytest.raises(ConfigError, match="item_text_weight"):
        Config(model="LLMEnhancedSASRec", dataset=SLICE, config_dict={**teacher_config, "item_text_weight": -1})
    with pytest.raises(ConfigError, match="loss_type"):
        Config(model="LLMEnhancedSASRec", dataset=SLICE, config_dict={**teacher_config, "loss_type": "BPR"})
    config = Config(model="LLMEnhancedSASRec", dataset=SLICE,
                    config_dict={**teacher_config, "item_text_embedding_path": str(tmp_path / "none")})
    with pytest.raises(TeacherArtifactError, match="python -m recbole_distill.teacher.text_embedding"):
        create_dataset(config)
