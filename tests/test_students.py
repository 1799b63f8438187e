"""The three DLLM2Rec students inside RecBole's data flow, trainer and evaluator."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from recbole.data import data_preparation
from recbole.data.interaction import Interaction
from recbole.model.sequential_recommender import SASRec
from recbole.utils import init_seed

import recbole_distill.model.dllm2rec as dllm2rec
from recbole_distill import Config, create_dataset, get_model, get_trainer, load_data_and_model, run_recbole_distill
from recbole_distill.errors import ConfigError
from recbole_distill.model.layers import CollaborativeItemEmbedding
from recbole_distill.trainer import DistillTrainer

from conftest import SLICE

STUDENTS = ["DLLM2RecSASRec", "DLLM2RecGRU4Rec", "DLLM2RecBERT4Rec"]
REPO = Path(__file__).resolve().parent.parent


def prepare(base_config, teacher_dir, model, **overrides):
    config = Config(model=model, dataset=SLICE, config_dict={**base_config, "teacher_path": str(teacher_dir), **overrides})
    init_seed(config["seed"], config["reproducibility"])
    train_data, valid_data, test_data = data_preparation(config, create_dataset(config))
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset)
    return config, model, train_data, test_data


def first_batch(train_data):
    return next(iter(train_data))


@pytest.mark.parametrize("model", STUDENTS)
def test_student_trains_and_reloads_in_a_new_process(base_config, teacher_dir, tmp_path, model):
    checkpoints = tmp_path / "saved"
    config = {**base_config, "teacher_path": str(teacher_dir), "checkpoint_dir": str(checkpoints)}
    result = run_recbole_distill(model=model, dataset=SLICE, config_dict=config)
    assert set(result["test_result"]) >= {"ndcg@10", "hit@10", "ndcg@20", "mrr@10"}

    checkpoint = next(checkpoints.glob(f"{model}-*.pth"))
    script = (
        "import json, sys\n"
        "from recbole_distill import load_data_and_model, get_trainer\n"
        "config, model, dataset, train, valid, test = load_data_and_model(sys.argv[1])\n"
        "trainer = get_trainer(config['MODEL_TYPE'], config['model'])(config, model)\n"
        "print(json.dumps({k: float(v) for k, v in trainer.evaluate(test, load_best_model=False).items()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(checkpoint)], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == result["test_result"]


@pytest.mark.parametrize("model, teacher_key", [("DLLM2RecSASRec", "teacher_path"),
                                                ("LLMEnhancedSASRec", "item_text_embedding_path")])
def test_a_saved_model_never_reads_its_teacher_folder_again(base_config, teacher_copy, tmp_path, model, teacher_key):
    config = {**base_config, teacher_key: str(teacher_copy), "checkpoint_dir": str(tmp_path / "saved")}
    result = run_recbole_distill(model=model, dataset=SLICE, config_dict=config)
    [checkpoint] = (tmp_path / "saved").glob(f"{model}-*.pth")

    def loaded():
        config, model, _, _, _, test = load_data_and_model(str(checkpoint))
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        model.eval()
        with torch.no_grad():
            scores = torch.cat([model.full_sort_predict(batch[0]) for batch in test])
        return {k: float(v) for k, v in trainer.evaluate(test, load_best_model=False).items()}, scores

    metrics, scores = loaded()
    assert metrics == result["test_result"]
    embeddings = np.load(teacher_copy / "item_embeddings.npy")
    np.save(teacher_copy / "item_embeddings.npy", embeddings[::-1])  # same shape, rows permuted
    assert torch.equal(loaded()[1], scores)
    shutil.rmtree(teacher_copy)
    assert torch.equal(loaded()[1], scores)


@pytest.mark.parametrize("model, passes, overrides", [
    ("DLLM2RecSASRec", 1, {}), ("DLLM2RecGRU4Rec", 1, {}), ("DLLM2RecDROS", 1, {}), ("DLLM2RecBERT4Rec", 2, {}),
    ("DLLM2RecBERT4Rec", 1, {"rd_scores_from": "cloze"}),
])
def test_loss_parts_and_encoder_passes(base_config, teacher_dir, monkeypatch, model, passes, overrides):
    config, student, train_data, _ = prepare(base_config, teacher_dir, model, **overrides)
    calls = []
    recbole_model = next(c for c in type(student).__mro__ if c.__module__.startswith("recbole.model."))  # e.g. SASRec
    original = recbole_model.forward
    monkeypatch.setattr(recbole_model, "forward", lambda self, *inputs: calls.append(1) or original(self, *inputs))
    rec_loss, rd_loss = student.calculate_loss(first_batch(train_data))
    assert len(calls) == passes  # SASRec and GRU4Rec share one pass between the two losses
    assert rec_loss.item() > 0 and rd_loss.item() > 0
    (rec_loss + rd_loss).backward()
    assert student.item_embedding.projector.weight.grad.abs().sum() > 0
    assert student.loss_names == ("rec_loss", "rd_loss")
    assert get_trainer(config["MODEL_TYPE"], config["model"]) is DistillTrainer


@pytest.fixture
def distilled_scores(monkeypatch):
    """The scores each call of the ranking distillation loss reads, in order."""
    seen = []
    original = dllm2rec.ranking_distillation_loss
    monkeypatch.setattr(
        dllm2rec, "ranking_distillation_loss", lambda scores, *a, **k: seen.append(scores) or original(scores, *a, **k)
    )
    return seen


@pytest.mark.parametrize("model, scorings", [
    # full_sort_predict calls in the first and the second step: from the second step on, the CE models' L_d reads
    # the CE's own logits (the first step checks that they are full_sort_predict's scores); DROS's own loss
    # reads full_sort_predict; BERT4Rec's Cloze logits are other scores, so L_d keeps asking for them
    ("DLLM2RecSASRec", (1, 0)), ("DLLM2RecGRU4Rec", (1, 0)), ("DLLM2RecDROS", (2, 1)), ("DLLM2RecBERT4Rec", (1, 1)),
])
def test_distillation_scores_are_the_full_sort_scores(base_config, teacher_dir, distilled_scores, monkeypatch, model, scorings):
    """L_d must read exactly the scores full_sort_predict gives for the training prefix, at every step."""
    _, student, train_data, _ = prepare(base_config, teacher_dir, model)
    student.eval()  # no dropout, so both ways of computing the scores are deterministic
    calls = []
    original = type(student).full_sort_predict
    monkeypatch.setattr(type(student), "full_sort_predict", lambda self, i: calls.append(1) or original(self, i))
    batches = iter(train_data)
    for step in range(2):
        batch = next(batches)
        calls.clear()
        student.calculate_loss(batch)
        assert len(calls) == scorings[step]
        with torch.no_grad():
            assert torch.allclose(distilled_scores[-1], original(student, batch), atol=1e-5)


def test_one_pass_bert4rec_scores_are_those_of_the_cloze_input_with_mask_appended(base_config, teacher_dir, distilled_scores):
    _, student, train_data, _ = prepare(base_config, teacher_dir, "DLLM2RecBERT4Rec", rd_scores_from="cloze")
    student.eval()
    batch = first_batch(train_data)
    seen = distilled_scores
    student.calculate_loss(batch)
    cloze = Interaction({**batch.interaction, student.ITEM_SEQ: batch[student.MASK_ITEM_SEQ]})
    with torch.no_grad():
        to_cloze = (seen[0] - student.full_sort_predict(cloze)).abs().max()
        to_prefix = (seen[0] - student.full_sort_predict(batch)).abs().max()
    assert to_cloze < 1e-6 and to_prefix > 1e-4  # an untrained student's scores move little with the input


def test_without_distillation_the_student_is_the_recbole_model(base_config, teacher_dir):
    config, student, train_data, test_data = prepare(base_config, teacher_dir, "DLLM2RecSASRec", rd_weight=0, ed_weight=0)
    plain = SASRec(config, train_data._dataset)
    plain.load_state_dict(student.state_dict())
    assert not isinstance(student.item_embedding, CollaborativeItemEmbedding)
    batch = first_batch(train_data)
    torch.manual_seed(0)
    rec_loss, rd_loss = student.calculate_loss(batch)
    torch.manual_seed(0)
    assert torch.allclose(rec_loss, plain.calculate_loss(batch)) and rd_loss.item() == 0
    student.eval(), plain.eval()
    interaction = next(iter(test_data))[0]
    with torch.no_grad():
        assert torch.equal(student.full_sort_predict(interaction), plain.full_sort_predict(interaction))


def test_inference_uses_the_cached_table(base_config, teacher_dir):
    _, student, _, test_data = prepare(base_config, teacher_dir, "DLLM2RecSASRec")
    student.eval()
    interaction = next(iter(test_data))[0]
    with torch.no_grad():
        first = student.full_sort_predict(interaction)
        table = student.item_embedding.weight
        assert torch.equal(student.full_sort_predict(interaction), first)
        assert student.item_embedding.weight is table


@pytest.mark.parametrize(
    "overrides",
    [
        {"ed_scope": "input", "ed_projector": "mlp"},
        {"ed_offset": False, "rd_negative": None},
        {"rd_confidence": "sequence", "rd_negative": "bce", "teacher_k": 20},
        {"rd_confidence": "official", "rd_negative_exclude_history": True},
        {"rd_likelihood": "softmax", "rd_negative": None},
    ],
)
def test_variants_train_a_batch(base_config, teacher_dir, overrides):
    _, student, train_data, _ = prepare(base_config, teacher_dir, "DLLM2RecGRU4Rec", **overrides)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    batch = first_batch(train_data)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = sum(student.calculate_loss(batch))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("rd_gammas", [0.3, 0.5], "'rd_gammas'"),
        ("rd_gammas", [0, 0, 0], "not all 0"),
        ("rd_beta", 0, "'rd_beta' = 0"),
        ("teacher_k", 0, "'teacher_k' = 0"),
        ("rd_confidence", "global", "'rd_confidence' = 'global'"),
        ("ed_scope", "output", "'ed_scope' = 'output'"),
        ("rd_negative_exclude_history", "yes", "'rd_negative_exclude_history' = 'yes'"),
        ("rd_likelihood", "probit", "'rd_likelihood' = 'probit'"),
        ("ed_projector", "transformer", "'ed_projector'"),
        ("warmup_steps", -1, "'warmup_steps' = -1: expected a whole number >= 0"),
    ],
)
def test_nonsense_config_values_fail_before_any_data_is_loaded(base_config, key, value, message):
    with pytest.raises(ConfigError, match=message):
        Config(model="DLLM2RecSASRec", dataset=SLICE, config_dict={**base_config, key: value})


def test_recbole_models_run_through_the_same_harness(base_config, tmp_path):
    result = run_recbole_distill(
        model="GRU4Rec", dataset=SLICE, config_dict={**base_config, "checkpoint_dir": str(tmp_path)}
    )
    assert "ndcg@10" in result["test_result"]
    assert get_model("SASRec") is SASRec


@pytest.mark.parametrize("model, extra", [("BPR", {}), ("SASRec", {"loss_type": "BPR"}), ("DLLM2RecGRU4Rec", {"loss_type": "BPR"})])
def test_pairwise_models_and_losses_keep_recboles_negative_sampling(base_config, teacher_dir, tmp_path, model, extra):
    config = {**base_config, "checkpoint_dir": str(tmp_path), "teacher_path": str(teacher_dir), **extra}
    assert Config(model=model, dataset=SLICE, config_dict=config)["train_neg_sample_args"]["distribution"] == "uniform"
    assert "ndcg@10" in run_recbole_distill(model=model, dataset=SLICE, config_dict=config)["test_result"]


def test_student_defaults_layer_recbole_then_plugin(base_config):
    config = Config(model="DLLM2RecSASRec", dataset=SLICE, config_dict={})
    assert config["n_layers"] == 2 and config["hidden_dropout_prob"] == 0.5  # RecBole's SASRec.yaml
    assert config["rd_weight"] == 0.7 and config["rd_gammas"] == [0.3, 0.5, 0.1]  # the plugin's DLLM2Rec.yaml
    assert config["train_neg_sample_args"]["distribution"] == "none"  # loss_type CE: no negative sampling
    assert Config(model="DLLM2RecGRU4Rec", dataset=SLICE, config_dict={})["embedding_size"] == 64


def test_the_negative_can_avoid_the_samples_history():
    """rd_negative_exclude_history: the official code draws the negative outside history and target."""
    owner = type("Student", (), {"n_items": 9})()  # items 1..8; 0 is padding
    targets = torch.tensor([3, 8, 1] * 200)
    history = torch.tensor([[1, 2, 4, 5, 0], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6]] * 200)
    torch.manual_seed(0)
    for sample_history, allowed in ((None, None), (history, [{6, 7, 8}, {6, 7}, {7, 8}] * 200)):
        negatives = dllm2rec.DLLM2Rec._sample_negatives(owner, targets, sample_history)
        assert ((negatives >= 1) & (negatives <= 8) & (negatives != targets)).all()
        if allowed is not None:
            assert all(n in a for n, a in zip(negatives.tolist(), allowed))
            assert set(negatives[1::3].tolist()) == {6, 7}  # still uniform over what is left
    # without the option the history is not avoided: some negatives fall into it
    assert (dllm2rec.DLLM2Rec._sample_negatives(owner, targets)[:, None] == history).any(dim=1).any()
