"""PreBERT (the real local MiniLM fine-tuned on item sequences) and MiniBERT distilled from it."""


import pytest
import torch
from recbole.data import data_preparation
from recbole.utils import init_seed
from transformers import BertModel

from recbole_distill import Config, create_dataset, get_model, load_data_and_model, run_recbole_distill
from recbole_distill.benchmark.inference import compare_inference
from recbole_distill.data.artifacts import TeacherArtifacts
from recbole_distill.errors import ConfigError, RecBoleDistillError
from recbole_distill.model.item_tokens import item_token_map
from recbole_distill.model.plm import default_plm_path, load_tokenizer_and_config
from recbole_distill.model.sequential_recommender.minibert import load_frozen_teacher
from recbole_distill.teacher.export import export_teacher, item_embedding_table
from recbole_distill.trainer import DistillTrainer

from conftest import SLICE

# PreBERT keeps MiniLM's size (6 layers, hidden 384); a short epoch keeps the tests quick
FAST_PREBERT = {"train_prefix_ratio": 0.05, "learning_rate": 5e-4}


def prepare(base_config, model, **overrides):
    config = Config(model=model, dataset=SLICE, config_dict={**base_config, **overrides})
    init_seed(config["seed"], config["reproducibility"])
    train_data, valid_data, test_data = data_preparation(config, create_dataset(config))
    init_seed(config["seed"], config["reproducibility"])
    return config, get_model(model)(config, train_data._dataset), train_data, test_data


@pytest.fixture(scope="module")
def prebert_checkpoint(base_config, tmp_path_factory):
    """A PreBERT fine-tuned for one short epoch on the slice, saved by RecBole's trainer."""
    saved = tmp_path_factory.mktemp("prebert")
    run_recbole_distill(model="PreBERT", dataset=SLICE, config_dict={**base_config, **FAST_PREBERT, "checkpoint_dir": str(saved)})
    return next(saved.glob("PreBERT-*.pth"))


def test_prebert_loss_falls_from_the_real_minilm(base_config):
    config, model, train_data, _ = prepare(base_config, "PreBERT", train_prefix_ratio=0.25)
    assert model.bert.config.hidden_size == 384 and model.bert.config.num_hidden_layers == 6  # MiniLM itself
    batch = next(iter(train_data))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)

    def loss_on_fixed_masks():
        torch.manual_seed(0)  # the same prefixes, masks and dropout each time
        return model.calculate_loss(batch)

    first = loss_on_fixed_masks().item()
    for _ in range(4):
        optimizer.zero_grad()
        model.calculate_loss(batch).backward()
        optimizer.step()
    assert loss_on_fixed_masks().item() < first


def test_only_items_are_scored_and_padding_never_wins(base_config):
    config, model, train_data, _ = prepare(base_config, "PreBERT")
    batch = next(iter(train_data))
    model.eval()
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
    assert scores.shape == (len(batch), train_data._dataset.item_num)  # items only: no [MASK], [CLS] or words
    assert torch.isinf(scores[:, 0]).all() and torch.isfinite(scores[:, 1:]).all()


def test_random_init_has_the_same_architecture_but_not_the_weights(base_config):
    _, pretrained, _, _ = prepare(base_config, "PreBERT")
    _, scratch, _, _ = prepare(base_config, "PreBERT", plm_init="random")
    shapes = lambda m: {k: v.shape for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(pretrained) == shapes(scratch)
    key = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(pretrained.state_dict()[key], scratch.state_dict()[key])
    # the pre-trained model's item rows are MiniLM's own word embeddings of the items' tokens
    words = BertModel.from_pretrained(default_plm_path(), local_files_only=True).embeddings.word_embeddings.weight
    compact = pretrained.bert.get_input_embeddings().weight
    assert torch.equal(compact, words[pretrained.item_tokens])


def test_token_map_survives_save_and_load(prebert_checkpoint, base_config):
    config, model, dataset, *_ = load_data_and_model(prebert_checkpoint)
    tokenizer, _ = load_tokenizer_and_config(default_plm_path())
    expected = item_token_map(tokenizer, model.n_items, config["token_map_seed"])
    assert torch.equal(model.item_tokens[: model.n_items], expected)
    assert model.item_tokens[-2:].tolist() == [tokenizer.mask_token_id, tokenizer.cls_token_id]
    assert model.dataset_items == list(dataset.field2id_token[dataset.iid_field])  # for teachers' checks


def _minibert_overrides(mode, prebert_checkpoint, teacher_dir):
    return {"kd_teacher": mode, "teacher_model_file": str(prebert_checkpoint), "teacher_path": str(teacher_dir)}


@pytest.mark.parametrize("mode", ["online", "artifact"])
def test_minibert_learns_from_either_teacher(base_config, prebert_checkpoint, teacher_dir, mode):
    overrides = _minibert_overrides(mode, prebert_checkpoint, teacher_dir)
    config, model, train_data, _ = prepare(base_config, "MiniBERT", **overrides)
    ce, kd = model.calculate_loss(next(iter(train_data)))
    assert ce.item() > 0 and kd.item() > 0
    (ce + kd).backward()
    assert model.item_embedding.weight.grad is not None
    assert not any(key.startswith("teacher") for key in model.state_dict())  # the student's state only


# the online teacher's whole run takes ~40 s: its 6-layer encoder scores every batch
@pytest.mark.parametrize("mode", [pytest.param("online", marks=pytest.mark.slow), "artifact"])
def test_minibert_trains_and_tests_with_either_teacher(base_config, prebert_checkpoint, teacher_dir, tmp_path, mode):
    overrides = _minibert_overrides(mode, prebert_checkpoint, teacher_dir)
    result = run_recbole_distill(
        model="MiniBERT", dataset=SLICE, config_dict={**base_config, **overrides, "checkpoint_dir": str(tmp_path)}
    )
    assert 0 <= result["test_result"]["ndcg@10"] <= 1


def test_minibert_online_teacher_gives_prebert_logits(base_config, prebert_checkpoint):
    config, model, train_data, _ = prepare(base_config, "MiniBERT", teacher_model_file=str(prebert_checkpoint))
    batch = next(iter(train_data))
    _, prebert, *_ = load_data_and_model(prebert_checkpoint)
    prebert.eval()
    masked, index = batch[model.MASK_ITEM_SEQ], batch[model.MASK_INDEX]
    with torch.no_grad():
        assert torch.allclose(model.teacher.masked_logits(masked, index), prebert.masked_logits(masked, index), atol=1e-5)


def test_a_teacher_for_other_items_is_refused(base_config, prebert_checkpoint, tmp_path):
    checkpoint = torch.load(prebert_checkpoint, weights_only=False)
    checkpoint["other_parameter"]["dataset_items"] = list(reversed(checkpoint["other_parameter"]["dataset_items"]))
    torch.save(checkpoint, tmp_path / "shuffled.pth")
    config, model, train_data, _ = prepare(base_config, "MiniBERT", kd_alpha=1.0)
    with pytest.raises(RecBoleDistillError, match="other items than this dataset"):
        load_frozen_teacher(tmp_path / "shuffled.pth", train_data._dataset, "cpu")
    with pytest.raises(ConfigError, match="'teacher_model_file'"):
        load_frozen_teacher(tmp_path / "missing.pth", train_data._dataset, "cpu")


@pytest.mark.parametrize(
    "model, key, value, message",
    [
        ("MiniBERT", "kd_teacher", "offline", "'kd_teacher' = 'offline'"),
        ("MiniBERT", "teacher_model_file", None, "'teacher_model_file' = None"),
        ("PreBERT", "plm_init", "scratch", "'plm_init' = 'scratch'"),
        ("PreBERT", "mask_ratio", -0.1, "'mask_ratio' = -0.1"),
        ("PreBERT", "train_prefix_ratio", 0, "'train_prefix_ratio' = 0"),
        ("PreBERT", "warmup_steps", 2.5, "'warmup_steps' = 2.5"),
    ],
)
def test_nonsense_config_values_fail_before_any_data_is_loaded(base_config, model, key, value, message):
    with pytest.raises(ConfigError, match=message):
        Config(model=model, dataset=SLICE, config_dict={**base_config, key: value})


def test_warmup_raises_the_learning_rate_linearly(base_config):
    config, model, _, _ = prepare(base_config, "MiniBERT", kd_alpha=1.0, warmup_steps=4, learning_rate=0.01)
    trainer = DistillTrainer(config, model)
    seen = []
    for _ in range(6):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
    assert seen == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])


def test_inference_comparison_of_checkpoints(prebert_checkpoint):
    (name, seconds, parameters), = compare_inference([str(prebert_checkpoint)], repeats=1).values()
    assert name == "PreBERT" and seconds > 0 and parameters > 10_000_000


def test_export_takes_prebert_token_embeddings_as_item_embeddings(base_config):
    _, model, _, _ = prepare(base_config, "PreBERT")
    table = item_embedding_table(model)
    assert table.shape == (model.n_items, 384)
    assert torch.equal(table, model.bert.get_input_embeddings().weight[: model.n_items])


@pytest.mark.slow  # ranks every sample of the slice with the 6-layer encoder: about 2 minutes
def test_prebert_export_teaches_a_dllm2rec_student(base_config, prebert_checkpoint, tmp_path):
    folder = tmp_path / "teacher"
    test_result = export_teacher(prebert_checkpoint, folder, k=5, show_progress=False)
    artifacts = TeacherArtifacts(folder)
    assert artifacts.meta["ranking"]["teacher"].startswith("PreBERT checkpoint")
    assert artifacts.meta["ranking"]["test_result"] == test_result
    assert artifacts.meta["ranking"]["trained_with"]["train_prefix_ratio"] == FAST_PREBERT["train_prefix_ratio"]
    assert artifacts.item_embeddings().shape[1] == 384  # the items' MiniLM token embeddings
    config, model, train_data, _ = prepare(base_config, "DLLM2RecGRU4Rec", teacher_path=str(folder), teacher_k=5)
    rec_loss, rd_loss = model.calculate_loss(next(iter(train_data)))
    assert torch.isfinite(rec_loss + rd_loss) and rd_loss.item() > 0
