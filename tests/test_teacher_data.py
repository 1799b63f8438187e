"""Teacher artifacts: round trip and alignment with RecBole's samples (bad input: test_bad_input.py)."""

import numpy as np
import pytest
import torch

from recbole_distill import Config, create_dataset
from recbole_distill.data.alignment import score_consistency, target_hits
from recbole_distill.data.artifacts import TeacherArtifacts, write_item_embeddings, write_ranking
from recbole_distill.data.dataset import TARGET_POS, TEACHER_SCORE, TEACHER_TOPK, KeyedSequentialDataset
from recbole_distill.errors import TeacherArtifactError

from conftest import SLICE


def build(base_config, teacher_path, model="DLLM2RecSASRec", **overrides):
    config = Config(model=model, dataset=SLICE, config_dict={**base_config, "teacher_path": str(teacher_path), **overrides})
    dataset = create_dataset(config)
    return dataset, dataset.build()


def rewrite(folder, name, change):
    array = np.load(folder / name)
    array = change(array.copy())
    np.save(folder / name, array)


def test_export_records_how_the_checkpoint_was_trained(teacher_dir):
    ranking = TeacherArtifacts(teacher_dir).meta["ranking"]
    assert ranking["teacher"].startswith("SASRec checkpoint")
    assert ranking["trained_with"]["MAX_ITEM_LIST_LENGTH"] == 10 and "ndcg@10" in ranking["test_result"]


def test_sample_keys_are_unique_and_positions_count_from_the_first_interaction(base_config):
    config = Config(model="SASRec", dataset=SLICE, config_dict=base_config)
    dataset = KeyedSequentialDataset(config)
    train, valid, test = dataset.build()
    table = dataset.sample_table([train, valid, test])
    keys = set(zip(table["user"].tolist(), table["pos"].tolist()))
    assert len(keys) == len(table["user"])
    # leave-one-out: a user's test target is the last item of their history, valid the one before
    n_inter = np.bincount(dataset.inter_feat[dataset.uid_field].numpy())  # samples per user = interactions - 1
    test_users = test.inter_feat[dataset.uid_field].numpy()
    assert (test.inter_feat[TARGET_POS].numpy() == n_inter[test_users]).all()
    assert (valid.inter_feat[TARGET_POS].numpy() == n_inter[valid.inter_feat[dataset.uid_field].numpy()] - 1).all()


def test_round_trip_through_the_writer_and_reader(tmp_path):
    info = {"dataset": "toy", "samples": {"train": 2, "valid": 0, "test": 0}, "dataset_config": {}, "fingerprint": "f"}
    arrays = {
        "users": ["u1", "u2"],
        "samples": np.array([[0, 1, 0, 0], [1, 1, 1, 0]]),
        "topk": np.array([[1, 2], [0, -1]]),
        "scores": np.array([[0.5, 0.7], [0.1, 0.0]]),
        "target_scores": np.array([0.2, 0.3]),
    }
    write_ranking(tmp_path, info, items=["a", "b", "c"], info={"score_kind": "distance", "teacher": "toy"}, **arrays)
    write_item_embeddings(tmp_path, info, items=["a", "b", "c"], embeddings=np.eye(3), info={"source": "eye"})
    teacher = TeacherArtifacts(tmp_path)
    users, samples, topk, scores, target_scores = teacher.ranking()
    assert list(users) == ["u1", "u2"] and list(teacher.items) == ["a", "b", "c"]
    assert np.array_equal(samples, arrays["samples"]) and np.array_equal(topk, arrays["topk"])
    assert np.allclose(scores, arrays["scores"]) and np.allclose(target_scores, arrays["target_scores"])
    assert np.array_equal(teacher.item_embeddings(), np.eye(3, dtype=np.float32))
    assert teacher.meta["ranking"]["k"] == 2 and teacher.meta["embedding"]["dim"] == 3
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files
    with pytest.raises(TeacherArtifactError, match="other samples"):
        write_item_embeddings(tmp_path, {**info, "fingerprint": "g"}, items=["a", "b", "c"], embeddings=np.eye(3), info={})


def test_join_puts_the_teachers_ranking_on_each_sample(base_config, teacher_dir):
    dataset, (train, valid, test) = build(base_config, teacher_dir, teacher_k=5)
    _, samples, topk, scores, _ = TeacherArtifacts(teacher_dir).ranking()
    items = dataset.field2token_id[dataset.iid_field]
    teacher_items = TeacherArtifacts(teacher_dir).items
    for split in (train, valid, test):
        feat = split.inter_feat
        assert feat[TEACHER_TOPK].shape == (len(feat), 5)
        assert feat[TEACHER_TOPK].dtype == torch.int64 and (feat[TEACHER_TOPK] > 0).all()
    # spot-check one training sample against the raw arrays, through tokens
    feat = train.inter_feat
    user = dataset.id2token(dataset.uid_field, feat[dataset.uid_field][7].item())
    pos = feat[TARGET_POS][7].item()
    users = list(TeacherArtifacts(teacher_dir).ranking()[0])
    row = np.flatnonzero((samples[:, 0] == users.index(user)) & (samples[:, 1] == pos))[0]
    assert feat[TEACHER_TOPK][7].tolist() == [items[teacher_items[i]] for i in topk[row, :5]]
    assert np.allclose(feat[TEACHER_SCORE][7].numpy(), scores[row, :5])
    assert dataset.teacher_item_embedding.shape == (dataset.item_num, 384)
    assert torch.equal(dataset.teacher_item_embedding[0], torch.zeros(384))


def test_rows_in_any_order_align_the_same(base_config, teacher_dir, teacher_copy):
    permutation = np.random.default_rng(0).permutation(len(np.load(teacher_dir / "samples.npy")))
    for name in ("samples.npy", "topk.npy", "scores.npy", "target_scores.npy"):
        rewrite(teacher_copy, name, lambda a: a[permutation])
    _, original = build(base_config, teacher_dir)
    _, shuffled = build(base_config, teacher_copy)
    for a, b in zip(original, shuffled):
        assert torch.equal(a.inter_feat[TEACHER_TOPK], b.inter_feat[TEACHER_TOPK])
        assert torch.equal(a.inter_feat[TEACHER_SCORE], b.inter_feat[TEACHER_SCORE])


def test_alignment_statistics_on_a_hand_computed_case():
    topk = np.array([[3, 1, 2], [0, 2, -1], [4, 0, 1], [2, 4, 3]])
    scores = np.array([[0.9, 0.5, 0.2], [0.8, 0.3, 0.0], [0.7, 0.6, 0.1], [0.9, 0.8, 0.7]], dtype=np.float32)
    targets = np.array([1, 3, 2, 0])
    # row 0: target ranked, stored 0.5 = its score; row 1: unranked, fewer than K candidates (bounds nothing);
    # row 2: unranked, 0.05 below the K-th 0.1; row 3: unranked but 0.95 would beat the K-th 0.7: inconsistent
    target_scores = np.array([0.5, 0.9, 0.05, 0.95], dtype=np.float32)
    assert score_consistency(topk, scores, target_scores, targets, "logit") == 0.75
    # as distances (smaller is better) row 2's 0.05 beats the K-th 0.1 and row 3's 0.95 does not
    assert score_consistency(topk, scores, target_scores, targets, "distance") == 0.75
    own, permuted = target_hits(topk, targets, seed=0)
    assert own == 0.25
    shuffled = targets[np.random.default_rng(0).permutation(4)]
    assert permuted == np.mean([t in row for t, row in zip(shuffled, topk)])


@pytest.mark.parametrize("order", ["user-grouped", "shuffled"])
def test_rankings_moved_against_their_rows_are_refused_in_either_order(base_config, teacher_copy, order):
    n = len(np.load(teacher_copy / "samples.npy"))
    permutation = np.arange(n) if order == "user-grouped" else np.random.default_rng(0).permutation(n)
    for name in ("samples.npy", "topk.npy", "scores.npy", "target_scores.npy"):
        rewrite(teacher_copy, name, lambda a: a[permutation])
    build(base_config, teacher_copy)  # aligned: accepted (exported rows are grouped by user)
    for name in ("topk.npy", "scores.npy"):
        rewrite(teacher_copy, name, lambda a: np.roll(a, 1, axis=0))
    with pytest.raises(TeacherArtifactError, match=r"do not belong to their rows: score consistency \d+\.\d% of rows"):
        build(base_config, teacher_copy)
    build(base_config, teacher_copy, teacher_check_alignment=False)  # the documented switch


def test_only_the_parts_a_config_uses_are_required(base_config, teacher_copy):
    (teacher_copy / "topk.npy").unlink()
    dataset, (train, _, _) = build(base_config, teacher_copy, rd_weight=0)  # embedding distillation only
    assert TEACHER_TOPK not in train.inter_feat.columns
    assert dataset.teacher_item_embedding is not None
