"""DROS (SASRec + the DRO loss) and DLLM2RecDROS on the slice, their losses composed as the official code does."""

import pytest
import torch
from recbole.model.sequential_recommender import SASRec

from recbole_distill import run_recbole_distill
from recbole_distill.benchmark.report import plain_twin
from recbole_distill.data.dataset import TEACHER_TOPK
from recbole_distill.errors import ConfigError
from recbole_distill.model.losses import dro_loss, dro_propensity

from conftest import SLICE
from test_students import first_batch, prepare


def test_dros_loss_is_sasrecs_plus_alpha_times_dro(base_config, teacher_dir):
    _, model, train_data, _ = prepare(base_config, teacher_dir, "DROS", dro_alpha=0.4, dro_beta=2.0)
    model.eval()  # no dropout: the pieces below see the same scores
    batch = first_batch(train_data)
    targets = train_data._dataset.inter_feat[model.ITEM_ID]
    counts = torch.bincount(targets, minlength=model.n_items)
    assert torch.allclose(model.propensity, dro_propensity(counts))  # every training target counted
    scores = model.full_sort_predict(batch)
    expected = SASRec.calculate_loss(model, batch) + 0.4 * dro_loss(scores, batch[model.POS_ITEM_ID], model.propensity, 2.0).mean()
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-6)


def test_dllm2rec_dros_adds_the_weighted_dro_of_each_teacher_candidate(base_config, teacher_dir):
    _, student, train_data, _ = prepare(base_config, teacher_dir, "DLLM2RecDROS", dro_alpha=0.5, rd_negative=None)
    student.eval()
    batch = first_batch(train_data)
    rec_loss, rd_loss = student.calculate_loss(batch)
    scores = student.full_sort_predict(batch)
    weights = student._ranking_weights(scores, batch)
    topk = batch[TEACHER_TOPK]
    ranking = -(weights * torch.nn.functional.logsigmoid(scores.gather(1, topk))).sum(dim=1).mean()
    candidate_dro = (weights * dro_loss(scores, topk, student.propensity, 1.0)).sum(dim=1).mean()
    assert rd_loss.item() == pytest.approx(0.7 * (ranking + 0.5 * candidate_dro).item(), rel=1e-5)
    own = torch.nn.functional.cross_entropy(scores, batch[student.POS_ITEM_ID])
    own = own + 0.5 * dro_loss(scores, batch[student.POS_ITEM_ID], student.propensity, 1.0).mean()
    assert rec_loss.item() == pytest.approx(own.item(), rel=1e-5)


@pytest.mark.parametrize("model", ["DROS", "DLLM2RecDROS"])
def test_dros_models_train_and_evaluate(model, base_config, teacher_dir, tmp_path):
    config = {**base_config, "teacher_path": str(teacher_dir), "checkpoint_dir": str(tmp_path)}
    result = run_recbole_distill(model=model, dataset=SLICE, config_dict=config)
    assert set(result["test_result"]) >= {"ndcg@10", "hit@10"}
    assert plain_twin(model) == ("DROS" if model == "DLLM2RecDROS" else None)


def test_bad_dro_values_are_refused(base_config):
    with pytest.raises(ConfigError, match="'dro_beta' = 0: expected a number > 0"):
        run_recbole_distill(model="DROS", dataset=SLICE, config_dict={**base_config, "dro_beta": 0})
