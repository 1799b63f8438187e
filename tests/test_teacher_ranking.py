"""TeacherRanking: the stored rankings played back through RecBole's evaluator."""

import numpy as np
import pytest
import torch

from recbole_distill import Config, create_dataset, run_recbole_distill
from recbole_distill.data.artifacts import TeacherArtifacts
from recbole_distill.data.dataset import TEACHER_TOPK
from recbole_distill.errors import TeacherArtifactError
from recbole_distill.model.sequential_recommender import TeacherRanking

from conftest import SLICE
from test_teacher_data import rewrite


def test_scores_rank_the_stored_candidates_first_in_the_teachers_order(base_config, teacher_dir):
    config = Config(model="TeacherRanking", dataset=SLICE, config_dict={**base_config, "teacher_path": str(teacher_dir)})
    dataset = create_dataset(config)
    _, _, test = dataset.build()
    model = TeacherRanking(config, test)
    batch = test.inter_feat[:16]
    scores = model.full_sort_predict(batch)
    assert scores.shape == (16, dataset.item_num) and torch.isinf(scores[:, 0]).all()
    ranked = scores.argsort(dim=1, descending=True)[:, : config["teacher_k"]]

    # the stored top-K of each sample, read from the raw arrays through tokens
    teacher = TeacherArtifacts(teacher_dir)
    users, samples, topk, _, _ = teacher.ranking()
    for i in range(16):
        user = dataset.id2token(dataset.uid_field, batch[dataset.uid_field][i].item())
        row = np.flatnonzero((users[samples[:, 0]] == user) & (samples[:, 1] == batch["target_pos"][i].item()))[0]
        expected = dataset.token2id(dataset.iid_field, [teacher.items[j] for j in topk[row, : config["teacher_k"]]])
        assert ranked[i].tolist() == expected.tolist()
    candidates = scores.gather(1, batch[TEACHER_TOPK])
    others = scores.clone().scatter_(1, batch[TEACHER_TOPK], -torch.inf)
    assert (candidates.min(dim=1).values > others.max(dim=1).values).all()


def test_the_teacher_is_evaluated_by_recboles_evaluator(base_config, teacher_dir):
    result = run_recbole_distill(model="TeacherRanking", dataset=SLICE,
                                 config_dict={**base_config, "teacher_path": str(teacher_dir)})
    assert 0 < result["test_result"]["ndcg@10"] <= result["test_result"]["ndcg@20"] <= 1
    assert 0 < result["best_valid_result"]["ndcg@10"] <= 1


def test_rankings_without_test_rows_are_refused(base_config, teacher_copy):
    samples = np.load(teacher_copy / "samples.npy")
    keep = np.flatnonzero(samples[:, 3] != 2)
    for name in ("samples.npy", "topk.npy", "scores.npy", "target_scores.npy"):
        rewrite(teacher_copy, name, lambda a: a[keep])
    meta = (teacher_copy / "teacher.yaml").read_text().replace("n_samples:", "n_samples_was:")
    (teacher_copy / "teacher.yaml").write_text(meta)
    config = Config(model="TeacherRanking", dataset=SLICE, config_dict={**base_config, "teacher_path": str(teacher_copy)})
    with pytest.raises(TeacherArtifactError, match=r"no row for \d+ test sample\(s\)"):
        create_dataset(config).build()
