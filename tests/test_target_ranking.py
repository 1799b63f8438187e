"""The target-only control teacher: each sample's true next item as its one candidate, the embeddings kept."""

import numpy as np
import pytest

from recbole_distill import run_recbole_distill
from recbole_distill.data.artifacts import TeacherArtifacts
from recbole_distill.data.dataset import TEACHER_TOPK
from recbole_distill.errors import TeacherArtifactError
from recbole_distill.teacher.target_ranking import write_target_ranking

from conftest import SLICE
from test_teacher_data import build


@pytest.fixture(scope="module")
def target_teacher(teacher_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("control") / "target"
    write_target_ranking(teacher_dir, folder, command="test")
    return folder


def test_the_only_candidate_is_the_true_next_item(teacher_dir, target_teacher):
    source, control = TeacherArtifacts(teacher_dir), TeacherArtifacts(target_teacher)
    _, samples, _, _, target_scores = source.ranking()
    users, control_samples, topk, scores, control_target_scores = control.ranking()
    assert topk.shape == (len(samples), 1) and control.meta["ranking"]["k"] == 1
    assert np.array_equal(control_samples, samples) and np.array_equal(topk[:, 0], samples[:, 2])
    assert np.array_equal(scores[:, 0], target_scores) and np.array_equal(control_target_scores, target_scores)
    assert np.array_equal(control.item_embeddings(), source.item_embeddings())
    assert control.meta["fingerprint"] == source.meta["fingerprint"] and list(control.items) == list(source.items)
    assert control.meta["ranking"]["teacher"].startswith("control: each sample's true next item")


def test_a_student_gets_its_own_target_as_the_teachers_candidate(base_config, target_teacher):
    dataset, (train, _, _) = build(base_config, target_teacher, teacher_k=1)
    feat = train.inter_feat
    assert (feat[TEACHER_TOPK][:, 0] == feat[dataset.iid_field]).all()
    result = run_recbole_distill(
        model="DLLM2RecSASRec", dataset=SLICE, config_dict={**base_config, "teacher_path": str(target_teacher), "teacher_k": 1}
    )
    assert np.isfinite(result["best_valid_score"]) and "ndcg@10" in result["test_result"]


def test_it_refuses_to_overwrite_its_source(teacher_copy):
    with pytest.raises(TeacherArtifactError, match="new folder"):
        write_target_ranking(teacher_copy, teacher_copy)
