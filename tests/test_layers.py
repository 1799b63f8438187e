"""The collaborative item embedding: formula, shapes, scopes and the inference cache."""

import pytest
import torch
from torch import nn

import recbole_distill  # noqa: F401
from recbole_distill.model.layers import CollaborativeItemEmbedding


def make_layer(n_items=6, dim=4, teacher_dim=3, **kwargs):
    torch.manual_seed(0)
    teacher = torch.randn(n_items, teacher_dim)
    teacher[0] = 0
    layer = CollaborativeItemEmbedding(nn.Embedding(n_items, dim, padding_idx=0), teacher, weight=0.3, **kwargs)
    return layer, teacher


def test_fused_embedding_follows_eq_13():
    layer, teacher = make_layer()
    ids = torch.tensor([[1, 2, 0], [5, 5, 3]])
    expected = layer.id_embedding(ids) + 0.3 * layer.projector(teacher[ids])
    assert layer(ids).shape == (2, 3, 4)
    assert torch.allclose(layer(ids), expected, atol=1e-6)
    assert torch.allclose(layer.weight, layer.id_embedding.weight + 0.3 * layer.projector(teacher), atol=1e-6)


def test_input_scope_fuses_only_encoder_inputs():
    layer, teacher = make_layer(scope="input")
    ids = torch.tensor([1, 4])
    assert torch.equal(layer(ids), layer.id_embedding(ids))  # output side: the ID embedding b
    assert layer.weight is layer.id_embedding.weight
    with layer.input_lookups():
        fused = layer(ids)
    assert torch.allclose(fused, layer.id_embedding(ids) + 0.3 * layer.projector(teacher[ids]), atol=1e-6)


def test_without_offset_the_item_is_its_projected_teacher_embedding():
    layer, teacher = make_layer(offset=False)
    assert layer.id_embedding is None
    ids = torch.tensor([2, 3])
    assert torch.allclose(layer(ids), 0.3 * layer.projector(teacher[ids]), atol=1e-6)


def test_mlp_projector_and_extra_rows_for_special_tokens():
    # BERT4Rec keeps one more row than there are items, for its [MASK] token: its teacher row is zero
    teacher = torch.randn(6, 3)
    layer = CollaborativeItemEmbedding(nn.Embedding(7, 4), teacher, weight=1.0, projector="mlp")
    assert layer.weight.shape == (7, 4)
    assert torch.equal(layer.teacher_embedding[6], torch.zeros(3))
    assert torch.equal(layer.teacher_embedding[0], torch.zeros(3))
    assert isinstance(layer.projector, nn.Sequential)


def test_inference_table_is_cached_until_a_parameter_changes():
    layer, _ = make_layer()
    with torch.no_grad():
        first = layer.weight
        assert layer.weight is first  # reused, not recomputed
        assert torch.equal(layer(torch.tensor([3])), first[3:4])
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer.weight.sum().backward()
    optimizer.step()
    with torch.no_grad():
        second = layer.weight
    assert second is not first and not torch.equal(second, first)
    layer.load_state_dict({k: v + 1 for k, v in layer.state_dict().items()})
    with torch.no_grad():
        assert not torch.equal(layer.weight, second)


def test_one_step_shares_the_table_and_gives_the_same_gradients():
    ids = torch.tensor([[1, 2, 2], [5, 0, 3]])

    def loss_and_grads(layer):
        loss = (layer(ids).sum() + (layer.weight**2).sum()) * 0.5
        loss.backward()
        return loss.item(), [p.grad.clone() for p in layer.parameters()]

    shared, _ = make_layer()
    with shared.one_step():
        assert shared.weight is shared.weight  # computed once in the step
        shared_result = loss_and_grads(shared)
    assert shared.weight is not shared.weight  # outside a step every call builds its own graph
    separate, _ = make_layer()
    separate_result = loss_and_grads(separate)
    assert shared_result[0] == pytest.approx(separate_result[0])
    for a, b in zip(shared_result[1], separate_result[1]):
        assert torch.allclose(a, b, atol=1e-6)


def test_training_lookups_carry_gradient_to_both_parts():
    layer, _ = make_layer()
    layer(torch.tensor([[1, 2]])).sum().backward()
    assert layer.id_embedding.weight.grad[1].abs().sum() > 0
    assert layer.projector.weight.grad.abs().sum() > 0


def test_unknown_scope_is_refused():
    with pytest.raises(ValueError, match="scope"):
        make_layer(scope="output")
