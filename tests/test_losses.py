"""Ranking distillation loss against values computed by hand from DLLM2Rec's equations."""

import math

import pytest
import torch

import recbole_distill  # noqa: F401
from recbole_distill.model.losses import (
    logit_distillation_loss,
    ranking_distillation_loss,
    ranking_distillation_weights,
    teacher_logits_from_topk,
)


def softmax(xs):
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


def log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def mix(gammas, *parts):
    raw = [sum(g * part[k] for g, part in zip(gammas, parts)) for k in range(len(parts[0]))]
    return [r / sum(raw) for r in raw]


# Items 1..5 (column 0 is padding). The student's top-3 is {4, 1, 5}.
SCORES = torch.tensor([[0.0, 2.0, -1.0, 0.5, 3.0, 1.0]])
TOPK = torch.tensor([[2, 3, 1]])  # teacher's top-3, best first: only item 1 is also in the student's top-3


def test_candidate_confidence_with_distances():
    distances = torch.tensor([[1.0, 2.0, 4.0]])
    w_p = softmax([-1, -2, -3])  # eq. 6, beta = 1
    w_c = softmax([-1.0, -2.0, -4.0])  # official: softmax of -distance over the candidates
    w_o = [0, 0, 1]  # eq. 8
    w = mix((0.3, 0.5, 0.1), w_p, w_c, w_o)
    expected = -(w[0] * log_sigmoid(-1.0) + w[1] * log_sigmoid(0.5) + w[2] * log_sigmoid(2.0))

    weights = ranking_distillation_weights(SCORES, TOPK, distances)
    assert weights[0].tolist() == pytest.approx(w, rel=1e-6)
    loss = ranking_distillation_loss(SCORES, TOPK, distances, gammas=(0.3, 0.5, 0.1), score_kind="distance")
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_logit_scores_beta_and_gammas():
    logits = torch.tensor([[3.0, 1.0, 0.0]])
    topk = torch.tensor([[4, 1, 2]])  # items 4 and 1 overlap with the student's top-3
    w_p = softmax([-1 / 2, -2 / 2, -3 / 2])  # beta = 2
    w_c = softmax([3.0, 1.0, 0.0])
    w_o = [1, 1, 0]
    w = mix((1.0, 0.2, 0.4), w_p, w_c, w_o)
    expected = -(w[0] * log_sigmoid(3.0) + w[1] * log_sigmoid(2.0) + w[2] * log_sigmoid(-1.0))
    loss = ranking_distillation_loss(SCORES, topk, logits, gammas=(1.0, 0.2, 0.4), beta=2.0, score_kind="logit")
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_prob_scores_are_normalised_probabilities():
    probs = torch.tensor([[0.5, 0.3, 0.1]])
    weights = ranking_distillation_weights(SCORES, TOPK, probs, gammas=(0.0, 1.0, 0.0), score_kind="prob")
    assert weights[0].tolist() == pytest.approx([0.5 / 0.9, 0.3 / 0.9, 0.1 / 0.9], rel=1e-6)


def test_sequence_confidence_weights_rows_by_teacher_certainty():
    scores = SCORES.repeat(2, 1)
    topk = torch.tensor([[2, 3, 1], [5, 2, 0]])  # the second row has only two candidates
    distances = torch.zeros(2, 3)
    target_distances = torch.tensor([1.0, 3.0])
    # per-row confidence: softmax over the batch of -distance(true item), times 2 rows: each row's total;
    # inside the row the confidence part of the mix is spread evenly over its candidates
    c = [2 * p for p in softmax([-1.0, -3.0])]
    w_p = [softmax([-1, -2, -3]), softmax([-1, -2]) + [0]]
    w_c = [[1 / 3] * 3, [1 / 2] * 2 + [0]]
    w_o = [[0, 0, 1], [1, 0, 0]]  # student top-3 is {4, 1, 5}
    expected_w = [[c[r] * w for w in mix((0.3, 0.5, 0.1), w_p[r], w_c[r], w_o[r])] for r in range(2)]

    weights = ranking_distillation_weights(
        scores, topk, distances, confidence="sequence", teacher_target_scores=target_distances
    )
    for row in range(2):
        assert weights[row].tolist() == pytest.approx(expected_w[row], rel=1e-6, abs=1e-12)
    assert weights.sum(dim=1).tolist() == pytest.approx(c, rel=1e-6)
    y = [[-1.0, 0.5, 2.0], [1.0, -1.0]]
    expected = sum(-sum(w * log_sigmoid(v) for w, v in zip(expected_w[r], y[r])) for r in range(2)) / 2
    loss = ranking_distillation_loss(
        scores, topk, distances, confidence="sequence", teacher_target_scores=target_distances
    )
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_sequence_confidence_totals_order_as_the_target_distances():
    target_distances = torch.tensor([0.2, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0])
    topk = torch.tensor([[2, 3, 1]]).repeat(8, 1)
    weights = ranking_distillation_weights(
        SCORES.repeat(8, 1), topk, torch.zeros(8, 3), confidence="sequence", teacher_target_scores=target_distances
    )
    totals = weights.sum(dim=1)
    assert (totals[1:] < totals[:-1]).all()  # the closer the true item, the larger the sample's share
    assert totals.mean().item() == pytest.approx(1.0, rel=1e-6)
    assert totals.tolist() == pytest.approx([8 * p for p in softmax([-d for d in target_distances.tolist()])], rel=1e-5)


def official_confidence(distances):
    """The official DLLM2Rec code's candidate confidence (main.py), transcribed: float32 torch,
    ``weight = exp(-conf) + 1e-8`` normalised over the K candidates of each row."""
    conf = torch.tensor(distances, dtype=torch.float32)
    weight = torch.exp(-conf) + 1e-8
    return weight / weight.sum(dim=1, keepdim=True)


def test_official_confidence_is_the_official_formula_up_to_large_distances():
    topk = torch.tensor([[2, 3, 1]])
    for row in ([0.5, 1.0, 2.0], [5.0, 9.0, 14.0], [12.0, 16.0, 20.0], [18.0, 25.0, 40.0], [60.0, 100.0, 150.0]):
        weights = ranking_distillation_weights(
            SCORES, topk, torch.tensor([row]), gammas=(0.0, 1.0, 0.0), confidence="official"
        )
        assert weights[0].tolist() == pytest.approx(official_confidence([row])[0].tolist(), rel=1e-5, abs=1e-7)
    # small distances: the softmax ("candidate"); LLaMA-sized ones: uniform, while the softmax stays sharp
    far = torch.tensor([[30.0, 35.0, 40.0]])
    official = ranking_distillation_weights(SCORES, topk, far, gammas=(0.0, 1.0, 0.0), confidence="official")
    candidate = ranking_distillation_weights(SCORES, topk, far, gammas=(0.0, 1.0, 0.0), confidence="candidate")
    assert official[0].tolist() == pytest.approx([1 / 3] * 3, rel=1e-2)
    assert candidate[0, 0].item() > 0.85
    near = torch.tensor([[1.0, 2.0, 4.0]])
    assert ranking_distillation_weights(SCORES, topk, near, confidence="official")[0].tolist() == pytest.approx(
        ranking_distillation_weights(SCORES, topk, near, confidence="candidate")[0].tolist(), rel=1e-6
    )


def test_official_and_bce_negative_terms():
    distances = torch.tensor([[1.0, 2.0, 4.0]])
    plain = ranking_distillation_loss(SCORES, TOPK, distances).item()
    y_neg = torch.tensor([1.5])
    official = ranking_distillation_loss(SCORES, TOPK, distances, negative_scores=y_neg, negative="official")
    bce = ranking_distillation_loss(SCORES, TOPK, distances, negative_scores=y_neg, negative="bce")
    # the weights of a row sum to 1, so the negative term is added once per row
    assert official.item() == pytest.approx(plain - log_sigmoid(1 - 1.5), rel=1e-6)
    assert bce.item() == pytest.approx(plain - log_sigmoid(-1.5), rel=1e-6)


def test_rows_without_candidates_add_nothing_and_count_in_the_mean():
    scores = SCORES.repeat(2, 1)
    topk = torch.tensor([[2, 3, 1], [0, 0, 0]])
    distances = torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]])
    single = ranking_distillation_loss(SCORES, TOPK, distances[:1]).item()
    assert ranking_distillation_loss(scores, topk, distances).item() == pytest.approx(single / 2, rel=1e-6)
    assert ranking_distillation_weights(scores, topk, distances)[1].tolist() == [0.0, 0.0, 0.0]


def test_gradient_reaches_only_the_teachers_items():
    scores = SCORES.clone().requires_grad_(True)
    ranking_distillation_loss(scores, TOPK, torch.tensor([[1.0, 2.0, 4.0]])).backward()
    nonzero = set(torch.nonzero(scores.grad[0]).flatten().tolist())
    assert nonzero == {1, 2, 3}
    assert (scores.grad[0, [1, 2, 3]] < 0).all()  # each teacher item is pushed up


def test_bad_arguments_are_refused():
    distances = torch.tensor([[1.0, 2.0, 4.0]])
    with pytest.raises(ValueError, match="score_kind"):
        ranking_distillation_loss(SCORES, TOPK, distances, score_kind="rank")
    with pytest.raises(ValueError, match="teacher_target_scores"):
        ranking_distillation_loss(SCORES, TOPK, distances, confidence="sequence")
    with pytest.raises(ValueError, match="negative"):
        ranking_distillation_loss(SCORES, TOPK, distances, negative_scores=torch.zeros(1), negative="hinge")


def test_logit_distillation_by_hand():
    # row 1: student uniform over 2 items, teacher (0, 2 ln 3) / T=2 -> (1/4, 3/4), target item 1
    # row 2: teacher gives item 0 no mass (-inf); student (ln 2, 0, 0) -> (1/2, 1/4, 1/4), target item 2
    student = torch.tensor([[0.0, 0.0, float("-inf")], [math.log(2), 0.0, 0.0]])
    teacher = torch.tensor([[0.0, 2 * math.log(3), float("-inf")], [float("-inf"), 0.0, 0.0]])
    target = torch.tensor([1, 2])
    ce = (math.log(2) + math.log(4)) / 2
    # at T=2 the student's row 2 is softmax(ln2/2, 0, 0) = (sqrt2, 1, 1) / (2 + sqrt2)
    kl_1 = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    kl_2 = 2 * 0.5 * math.log(0.5 / (1 / (2 + math.sqrt(2))))
    expected = 0.25 * ce + 0.75 * 4 * (kl_1 + kl_2) / 2
    loss = logit_distillation_loss(student, teacher, target, alpha=0.25, temperature=2.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_logit_distillation_with_alpha_one_is_cross_entropy():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 7), torch.randn(5, 7)
    target = torch.randint(0, 7, (5,))
    plain = torch.nn.functional.cross_entropy(student, target)
    assert torch.allclose(logit_distillation_loss(student, teacher, target, alpha=1.0, temperature=3.0), plain)
    # the soft part is zero when the student already matches the teacher
    matched = logit_distillation_loss(teacher, teacher, target, alpha=0.0, temperature=1.5)
    assert matched.item() == pytest.approx(0.0, abs=1e-6)


def test_teacher_logits_from_stored_topk():
    topk = torch.tensor([[3, 1, -1], [0, 2, 1]])
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.5, 0.25, 0.0]])
    logits = teacher_logits_from_topk(topk, scores, n_items=4, score_kind="distance")
    inf = float("-inf")
    assert torch.equal(logits, torch.tensor([[inf, -1.0, inf, -2.0], [-0.5, 0.0, -0.25, inf]]))
