"""History-free teacher rankings: no builder keeps an item the user already had, and the teacher's metrics survive."""

import numpy as np
import pytest
import torch
from recbole.data import data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.utils import init_seed

from recbole_distill import Config, run_recbole_distill
from recbole_distill.data.artifacts import TeacherArtifacts
from recbole_distill.data.dataset import TARGET_POS, KeyedSequentialDataset
from recbole_distill.errors import ConfigError
from recbole_distill.teacher.export import export_teacher
from recbole_distill.teacher.ranking import drop_history, resolve_exclude_history
from recbole_distill.utils import create_dataset, get_trainer

from conftest import SLICE


@pytest.fixture(scope="module")
def keyed(base_config):
    config = Config(model="SASRec", dataset=SLICE, config_dict=base_config)
    dataset = KeyedSequentialDataset(config)
    return dataset, dataset.build()


def histories_from_samples(dataset, datasets):
    """Every user's time-ordered items rebuilt from RecBole's samples alone: the first item of the sample at
    target position 1, then each sample's target in position order (beyond MAX_ITEM_LIST_LENGTH too)."""
    sequences = {}
    for split in datasets:
        feat = split.inter_feat
        for user, pos, item, first in zip(feat[dataset.uid_field].tolist(), feat[TARGET_POS].tolist(),
                                          feat[dataset.iid_field].tolist(), feat[dataset.item_id_list_field][:, 0].tolist()):
            sequence = sequences.setdefault(user, {})
            sequence[pos] = item
            if pos == 1:
                sequence[0] = first
    return {user: [items[p] for p in sorted(items)] for user, items in sequences.items()}


def test_history_index_is_every_earlier_item_of_the_user(keyed):
    dataset, datasets = keyed
    sequences = histories_from_samples(dataset, datasets)
    users = np.array([u for u in sequences for _ in range(3)])
    positions = np.array([p for u in sequences for p in (1, len(sequences[u]) // 2, len(sequences[u]) - 1)])
    rows, items = dataset.history_index(users, positions)
    for r, (user, pos) in enumerate(zip(users, positions)):
        assert items[rows == r].tolist() == sequences[user][:pos]
    assert max(len(s) for s in sequences.values()) > dataset.config["MAX_ITEM_LIST_LENGTH"]  # longer than a sample's list
    assert not dataset.has_repeats()


def test_the_default_follows_repeated_pairs(keyed):
    dataset, _ = keyed
    assert resolve_exclude_history(None, dataset) is True and resolve_exclude_history(False, dataset) is False
    dataset_with_repeat = type(dataset).__new__(type(dataset))
    dataset_with_repeat.__dict__.update(dataset.__dict__)
    dataset_with_repeat.user_items = dataset.user_items.copy()
    first = dataset.user_offsets[1]
    dataset_with_repeat.user_items[first + 1] = dataset.user_items[first]  # user 1 meets their first item again
    assert dataset_with_repeat.has_repeats() and resolve_exclude_history(None, dataset_with_repeat) is False
    with pytest.raises(ConfigError, match="teacher_exclude_history"):
        resolve_exclude_history("yes", dataset)


def test_exported_rankings_hold_no_history_item_and_replay_the_checkpoints_metrics(base_config, teacher_dir, keyed, tmp_path):
    dataset, datasets = keyed
    sequences = histories_from_samples(dataset, datasets)
    teacher = TeacherArtifacts(teacher_dir)
    ranking = teacher.meta["ranking"]
    assert ranking["exclude_history"] is True  # ml-100k has no repeated (user, item) pair
    users, samples, topk, _, _ = teacher.ranking()
    user_ids = dataset.token2id(dataset.uid_field, users[samples[:, 0]])
    item_ids = dataset.token2id(dataset.iid_field, teacher.items)
    for row in range(len(samples)):
        history = set(sequences[user_ids[row]][: samples[row, 1]])
        assert not history & set(item_ids[topk[row]].tolist()), row

    # TeacherRanking replays the checkpoint's own history-free metrics exactly (K = 20 covers @10 and @20)
    replay = run_recbole_distill(model="TeacherRanking", dataset=SLICE,
                                 config_dict={**base_config, "teacher_path": str(teacher_dir)})["test_result"]
    assert replay == ranking["test_result_without_history"]
    assert ranking["test_result_without_history"]["ndcg@10"] >= ranking["test_result"]["ndcg@10"]

    # switched off, the stored rankings are the checkpoint's plain top-K and replay its plain metrics
    checkpoint = ranking["teacher"].split(" checkpoint ")[1]
    export_teacher(checkpoint, tmp_path / "plain", k=20, show_progress=False, exclude_history=False)
    plain = TeacherArtifacts(tmp_path / "plain").meta["ranking"]
    assert plain["exclude_history"] is False and "test_result_without_history" not in plain
    # (evaluated as RecBole does, with history items: the plain top-K holds them)
    plain_config = {**base_config, "teacher_path": str(tmp_path / "plain"), "eval_exclude_history": False}
    replay = run_recbole_distill(model="TeacherRanking", dataset=SLICE, config_dict=plain_config)["test_result"]
    assert replay == plain["test_result"] == ranking["test_result"]
    _, _, plain_topk, _, _ = TeacherArtifacts(tmp_path / "plain").ranking()
    in_history = [len(set(sequences[user_ids[r]][: samples[r, 1]]) & set(item_ids[plain_topk[r, :10]].tolist()))
                  for r in range(len(samples))]
    assert np.mean(in_history) > 1  # what the rule removes: here several of the plain top-10 per sample


def test_drop_history_moves_the_other_candidates_up(keyed):
    dataset, datasets = keyed
    sequences = histories_from_samples(dataset, datasets)
    user = next(iter(sequences))
    first, second, third = sequences[user][:3]
    others = [i for i in range(1, dataset.item_num) if i not in sequences[user]][:3]
    topk = np.array([[first, others[0], third, others[1], 0], [others[2], second, 0, 0, 0]])
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.0], [0.5, 0.4, 0.0, 0.0, 0.0]], dtype=np.float32)
    # row 0 at target position 2 (history: first, second); row 1 at position 1 (history: first)
    kept, kept_scores = drop_history(topk, scores, dataset, np.array([user, user]), np.array([2, 1]))
    assert kept.tolist() == [[others[0], third, others[1], 0, 0], [others[2], second, 0, 0, 0]]
    assert np.allclose(kept_scores, [[0.8, 0.7, 0.6, 0.0, 0.0], [0.5, 0.4, 0.0, 0.0, 0.0]])
    assert topk[0].tolist() == [first, others[0], third, others[1], 0]  # the input is left as it was


def test_evaluation_leaves_history_items_out_for_recbole_models_too(base_config, keyed):
    """RecBole masks no history for sequential models; eval_exclude_history does, over the whole history."""
    _, datasets = keyed
    sequences = histories_from_samples(*keyed)
    config = Config(model="SASRec", dataset=SLICE, config_dict=base_config)
    dataset = create_dataset(config)
    assert isinstance(dataset, KeyedSequentialDataset)  # RecBole's model, RecBole's samples, with their keys
    _, _, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], True)
    model = SASRec(config, test_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    results, masked = {}, []
    evaluate_batch = trainer._full_sort_batch_eval

    def keep(batched_data):
        interaction, scores, positive_u, positive_i = evaluate_batch(batched_data)
        users, positions = interaction["user_id"].tolist(), interaction[TARGET_POS].tolist()
        masked.extend((sequences[u][:p], torch.isinf(s).nonzero().flatten().tolist()) for u, p, s in zip(users, positions, scores))
        return interaction, scores, positive_u, positive_i

    trainer._full_sort_batch_eval = keep
    for setting in (False, True):
        config["eval_exclude_history"] = setting
        masked.clear()
        results[setting] = trainer.evaluate(test_data, load_best_model=False)
        # the padding item is always masked; the user's earlier items exactly when the setting is on
        assert all(set(items) == ({0} | set(history) if setting else {0}) for history, items in masked)
    assert max(len(history) for history, _ in masked) > config["MAX_ITEM_LIST_LENGTH"]
    assert results[True]["ndcg@10"] >= results[False]["ndcg@10"]
    config["eval_exclude_history"] = "sometimes"
    with pytest.raises(ConfigError, match="eval_exclude_history"):
        trainer.evaluate(test_data, load_best_model=False)
