"""Ranking distillation loss against values computed by hand from DLLM2Rec's equations."""

import math

import pytest
import torch

import recbole_distill  # noqa: F401
from recbole_distill.model.losses import (
    dro_loss,
    dro_propensity,
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


def test_softmax_likelihood_makes_each_candidate_a_positive_of_the_students_softmax():
    distances = torch.tensor([[1.0, 2.0, 4.0]])
    w = mix((0.3, 0.5, 0.1), softmax([-1, -2, -3]), softmax([-1.0, -2.0, -4.0]), [0, 0, 1])
    items = [0.0, 2.0, -1.0, 0.5, 3.0, 1.0]  # SCORES, padding column included as in RecBole's CE
    log_z = math.log(sum(math.exp(x) for x in items))
    expected = -(w[0] * (-1.0 - log_z) + w[1] * (0.5 - log_z) + w[2] * (2.0 - log_z))
    loss = ranking_distillation_loss(SCORES, TOPK, distances, likelihood="softmax")
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # a common shift of the logits, which leaves the student's cross-entropy unchanged, leaves it unchanged too
    shifted = ranking_distillation_loss(SCORES + 5.0, TOPK, distances, likelihood="softmax")
    assert shifted.item() == pytest.approx(expected, rel=1e-6)
    sigmoid = ranking_distillation_loss(SCORES, TOPK, distances).item()
    assert ranking_distillation_loss(SCORES + 5.0, TOPK, distances).item() < 0.1 * sigmoid  # eq. 5 is met by the shift


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
    with pytest.raises(ValueError, match="likelihood"):
        ranking_distillation_loss(SCORES, TOPK, distances, likelihood="probit")


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


def official_dro(scores, target, propensity, beta):
    """The official DLLM2Rec code's DRO term for one row, transcribed: sum_j exp(p y^2 / b), minus the target's,
    plus the target's exp(p (y - 1)^2 / b), in plain floats (items 1.., column 0 is padding)."""
    terms = [math.exp(p * y * y / beta) for p, y in zip(propensity[1:], scores[1:])]
    p_t, y_t = propensity[target], scores[target]
    return math.log(sum(terms) - math.exp(p_t * y_t * y_t / beta) + math.exp(p_t * (y_t - 1) ** 2 / beta) + 1e-24)


def test_dro_propensity_by_hand():
    counts = torch.tensor([0, 3, 0, 1])  # padding, then items 1..3 as training targets
    smoothed = [1, 4, 1, 2]
    expected = [(c / 8) ** 0.05 for c in smoothed]
    assert dro_propensity(counts).tolist() == pytest.approx(expected, rel=1e-6)


def test_dro_loss_by_hand():
    scores = [0.0, 2.0, -1.0, 0.5, 3.0, 1.0]
    propensity = [0.0, 0.9, 0.8, 0.7, 0.95, 0.85]
    beta = 2.0
    # row target 4: items 1, 2, 3, 5 as negatives (p y^2 / b), item 4 as the positive (p (y - 1)^2 / b)
    by_hand = math.log(
        math.exp(0.9 * 4 / 2) + math.exp(0.8 * 1 / 2) + math.exp(0.7 * 0.25 / 2) + math.exp(0.85 * 1 / 2)
        + math.exp(0.95 * 4 / 2)
    )
    got = dro_loss(torch.tensor([scores]), torch.tensor([4]), torch.tensor(propensity), beta=beta)
    assert got.shape == (1,)
    assert got.item() == pytest.approx(by_hand, rel=1e-6)
    assert by_hand == pytest.approx(official_dro(scores, 4, propensity, beta), rel=1e-9)


def test_dro_loss_per_candidate_column_and_large_scores():
    torch.manual_seed(0)
    scores = torch.randn(3, 8) * 3
    propensity = dro_propensity(torch.randint(0, 20, (8,)))
    candidates = torch.tensor([[2, 5, 1], [7, 3, 4], [1, 2, 3]])
    columns = dro_loss(scores, candidates, propensity, beta=1.0)
    assert columns.shape == (3, 3)
    for row in range(3):
        for k in range(3):
            expected = official_dro(scores[row].tolist(), int(candidates[row, k]), propensity.tolist(), 1.0)
            assert columns[row, k].item() == pytest.approx(expected, rel=1e-5)
            one = dro_loss(scores[row : row + 1], candidates[row : row + 1, k], propensity)
            assert one.item() == pytest.approx(columns[row, k].item(), rel=1e-6)
    # scores whose exp(p y^2) overflows float32 (the official code gives inf there) stay finite
    large = dro_loss(torch.tensor([[0.0, 40.0, -30.0, 1.0]]), torch.tensor([1]), torch.ones(4))
    assert large.item() == pytest.approx(39.0**2, rel=1e-6)  # the positive's (40 - 1)^2 dominates
