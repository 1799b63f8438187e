r"""Distillation losses as pure functions of tensors.

The model decides *what* to distil (which scores, which teacher fields); these functions decide *how*.
Weights, temperatures and switches are arguments, so an ablation is a config change.
"""

import torch
import torch.nn.functional as F

SCORE_KINDS = ("distance", "logit", "prob")
CONFIDENCE_MODES = ("candidate", "official", "sequence")
NEGATIVE_TERMS = ("official", "bce")
LIKELIHOODS = ("sigmoid", "softmax")


def _confidence_logits(scores, score_kind):
    """Map teacher scores to logits of "how sure the teacher is": larger means surer."""
    if score_kind == "distance":
        return -scores
    if score_kind == "logit":
        return scores
    if score_kind == "prob":
        return torch.log(scores.clamp_min(1e-12))
    raise ValueError(f"score_kind must be one of {SCORE_KINDS}, got {score_kind!r}")


def _masked_softmax(logits, mask, dim):
    """Softmax over the entries where ``mask`` holds; zero elsewhere and on rows with no entry."""
    weights = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=dim)
    return torch.nan_to_num(weights, nan=0.0)


@torch.no_grad()
def ranking_distillation_weights(
    scores,
    teacher_topk,
    teacher_scores,
    gammas=(0.3, 0.5, 0.1),
    beta=1.0,
    score_kind="distance",
    confidence="candidate",
    teacher_target_scores=None,
):
    r"""Importance weights ``w_sk`` of DLLM2Rec's ranking distillation (Cui et al. 2024, eq. 6-10).

    ``w_sk = normalise_k(g_p * w^p_sk + g_c * w^c_sk + g_o * w^o_sk)`` over the teacher's candidates
    ``t_1..t_K`` of each row, where

    - position (eq. 6): ``w^p_sk = softmax_k(-k / beta)``, k = 1..K the teacher's rank;
    - confidence (eq. 7), per candidate from the teacher's score of each, read by ``score_kind`` as
      ``c_sk`` (``-distance``, ``logit`` or ``log prob``): ``confidence="candidate"``: ``softmax_k(c_sk)``;
      ``confidence="official"``: the official code's ``(exp(c_sk) + 1e-8) / sum_k' (exp(c_sk') + 1e-8)``,
      equal to the softmax while the candidates' ``exp(c)`` are well above ``1e-8`` and uniform once they
      all fall below it (L2 distances above about 18, as a LLaMA teacher's are);
      ``confidence="sequence"`` (paper text): one confidence per row from the teacher's score of the true
      item (``teacher_target_scores``), ``softmax`` over the rows of the batch times their number (mean 1
      over the rows with a teacher); it scales the row's total weight, and its place in the mix is
      spread evenly over the row's candidates;
    - consistency (eq. 8): ``w^o_sk = 1`` if ``t_k`` is also in the student's top-K of ``scores``.

    Candidates with id 0 (padding, "no candidate") get weight 0; the weights of a row sum to 1 (to the
    row's confidence with ``confidence="sequence"``), or to 0 if the row has no candidate. Computed
    without gradient.

    Args:
        scores (torch.Tensor): ``[B, n_items]`` student scores; column 0 is the padding item.
        teacher_topk (torch.LongTensor): ``[B, K]`` teacher's top-K item ids, best first.
        teacher_scores (torch.Tensor): ``[B, K]`` teacher's score of each of them.
        gammas (tuple): ``(g_p, g_c, g_o)``, the mix of position, confidence and consistency.
        beta (float): temperature of the position weight.
        score_kind (str): how to read teacher scores: ``distance``, ``logit`` or ``prob``.
        confidence (str): ``candidate`` or ``sequence``.
        teacher_target_scores (torch.Tensor, optional): ``[B]`` teacher's score of the true next item;
            required by ``confidence="sequence"``.

    Returns:
        torch.Tensor: ``[B, K]`` weights.
    """
    gamma_p, gamma_c, gamma_o = gammas
    valid = teacher_topk > 0
    n_rows, k = teacher_topk.shape

    ranks = torch.arange(1, k + 1, device=scores.device, dtype=scores.dtype).expand(n_rows, k)
    position = _masked_softmax(-ranks / beta, valid, dim=1)

    row_confidence = None
    if confidence == "candidate":
        conf = _masked_softmax(_confidence_logits(teacher_scores.to(scores.dtype), score_kind), valid, dim=1)
    elif confidence == "official":
        floored = (torch.exp(_confidence_logits(teacher_scores.to(scores.dtype), score_kind)) + 1e-8) * valid
        conf = floored / floored.sum(dim=1, keepdim=True).clamp_min(torch.finfo(floored.dtype).tiny)
    elif confidence == "sequence":
        if teacher_target_scores is None:
            raise ValueError("confidence='sequence' needs teacher_target_scores, the teacher's score of the true item")
        has_teacher = valid.any(dim=1) & torch.isfinite(teacher_target_scores)
        target_logits = torch.nan_to_num(_confidence_logits(teacher_target_scores.to(scores.dtype), score_kind))
        row_confidence = _masked_softmax(target_logits, has_teacher, dim=0) * has_teacher.sum()
        conf = valid / valid.sum(dim=1, keepdim=True).clamp_min(1)
    else:
        raise ValueError(f"confidence must be one of {CONFIDENCE_MODES}, got {confidence!r}")

    candidates = scores[:, 1:].topk(k, dim=1).indices + 1  # the student's top-K, padding excluded
    consistency = ((teacher_topk[:, :, None] == candidates[:, None, :]).any(dim=2) & valid).to(scores.dtype)

    mixed = (gamma_p * position + gamma_c * conf + gamma_o * consistency) * valid
    weights = mixed / mixed.sum(dim=1, keepdim=True).clamp_min(torch.finfo(mixed.dtype).tiny)
    return weights if row_confidence is None else weights * row_confidence[:, None]


def ranking_distillation_loss(
    scores,
    teacher_topk,
    teacher_scores,
    gammas=(0.3, 0.5, 0.1),
    beta=1.0,
    score_kind="distance",
    confidence="candidate",
    teacher_target_scores=None,
    negative_scores=None,
    negative="official",
    weights=None,
    likelihood="sigmoid",
):
    r"""DLLM2Rec's importance-aware ranking distillation loss (Cui et al. 2024, eq. 5).

    ``L_d = mean_s ( - sum_k w_sk * log sigmoid(scores[s, t_sk]) )``: the teacher's top-K items are
    extra positives for the student, weighted by :func:`ranking_distillation_weights`.

    ``likelihood="softmax"`` makes each candidate a positive of the student's own softmax instead,
    ``- sum_k w_sk * log softmax(scores[s])[t_sk]``: the same weighted positives for a student trained with
    cross-entropy over all items, whose logits a common shift leaves unchanged (the sigmoid of eq. 5 is the
    likelihood of the official code's BCE-trained students).

    The official code also pushes one sampled negative per row down with every candidate; pass its
    scores as ``negative_scores`` (``[B]``) to add ``sum_k w_sk * -log sigmoid(1 - y_neg)``
    (``negative="official"``, as in the code) or ``-log sigmoid(-y_neg)`` (``negative="bce"``).
    The paper's eq. 5 has no negative term; it is off unless ``negative_scores`` is given. ``weights``, if
    given, are :func:`ranking_distillation_weights` already computed for these arguments.

    Returns:
        torch.Tensor: the batch mean, a scalar.
    """
    if weights is None:
        weights = ranking_distillation_weights(
            scores, teacher_topk, teacher_scores, gammas, beta, score_kind, confidence, teacher_target_scores
        )
    if likelihood == "sigmoid":
        candidate_log_likelihood = F.logsigmoid(scores.gather(1, teacher_topk))
    elif likelihood == "softmax":
        candidate_log_likelihood = F.log_softmax(scores, dim=1).gather(1, teacher_topk)
    else:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    per_row = -(weights * candidate_log_likelihood).sum(dim=1)
    if negative_scores is not None:
        if negative == "official":
            negative_loss = -F.logsigmoid(1 - negative_scores)
        elif negative == "bce":
            negative_loss = -F.logsigmoid(-negative_scores)
        else:
            raise ValueError(f"negative must be one of {NEGATIVE_TERMS}, got {negative!r}")
        per_row = per_row + weights.sum(dim=1) * negative_loss
    return per_row.mean()


def dro_propensity(target_counts, power=0.05):
    """DROS's item propensity ``p_j = ((n_j + 1) / sum_j' (n_j' + 1)) ** power``, ``n_j`` the times item ``j``
    is a training target (official DLLM2Rec code, ``calcu_propensity_score``)."""
    smoothed = target_counts.double() + 1
    return (smoothed / smoothed.sum()).pow(power).float()


def dro_loss(scores, targets, propensity, beta=1.0):
    r"""DROS's distributionally robust loss (Yang et al., SIGIR 2023; as the official DLLM2Rec code computes it).

    For a row with scores ``y`` and positive item ``t``, each item's squared loss toward its label (0 for the
    others, 1 for ``t``) weighted by its propensity ``p``, in the KL-ball dual of radius ``beta``:

    ``L_DRO = log( sum_{j != t} exp(p_j * y_j^2 / beta) + exp(p_t * (y_t - 1)^2 / beta) )``

    (the code's ``sum_j exp(p_j y_j^2 / beta) - exp(p_t y_t^2 / beta) + exp(p_t (y_t - 1)^2 / beta)``, computed
    as a log-sum-exp so that large scores do not overflow). Column 0 (padding) takes no part.

    Args:
        scores (torch.Tensor): ``[B, n_items]`` student scores.
        targets (torch.LongTensor): ``[B]`` or ``[B, K]`` positive items; with ``K`` columns, one loss per
            column (each column's item is the positive, the row's other columns count as its negatives).
        propensity (torch.Tensor): ``[n_items]`` from :func:`dro_propensity`.
        beta (float): the robustness radius.

    Returns:
        torch.Tensor: ``[B]`` or ``[B, K]`` losses, as ``targets``.
    """
    columns = targets if targets.dim() == 2 else targets[:, None]
    negative = propensity * scores.pow(2) / beta  # every item's term as a negative
    negative[:, 0] = float("-inf")
    rows = torch.arange(len(scores), device=scores.device)[:, None]
    # log-sum-exp over the items outside this row's columns, then each column's sum adds the row's other
    # columns as negatives and its own item as the positive
    outside = negative.index_put((rows.expand_as(columns), columns), torch.tensor(float("-inf"), device=scores.device))
    rest = torch.logsumexp(outside, dim=1)  # [B]
    as_negative = negative.gather(1, columns)  # [B, K]
    as_positive = propensity[columns] * (scores.gather(1, columns) - 1).pow(2) / beta
    k = columns.size(1)
    itself = torch.eye(k, dtype=torch.bool, device=scores.device)  # a column is not its own negative
    others = as_negative[:, None, :].expand(-1, k, -1).masked_fill(itself, float("-inf"))
    terms = torch.cat([rest[:, None, None].expand(-1, k, 1), others, as_positive[:, :, None]], dim=2)
    losses = torch.logsumexp(terms, dim=2)
    return losses if targets.dim() == 2 else losses[:, 0]


def teacher_logits_from_topk(teacher_topk, teacher_scores, n_items, score_kind="logit"):
    """Dense ``[B, n_items]`` teacher logits from stored top-K: the K candidates get their score as a logit
    (see ``score_kind``), every other item ``-inf`` (no probability mass)."""
    logits = torch.full((len(teacher_topk), n_items), float("-inf"), device=teacher_scores.device)
    present = teacher_topk >= 0
    rows = torch.arange(len(teacher_topk), device=teacher_topk.device)[:, None].expand_as(teacher_topk)
    logits[rows[present], teacher_topk[present]] = _confidence_logits(teacher_scores.float(), score_kind)[present]
    return logits


def soft_target_kl(student_logits, teacher_logits, temperature=1.5):
    """Batch mean of ``KL(softmax(teacher / T) || softmax(student / T))`` over rows ``[N, n_items]``;
    items where the teacher's logit is ``-inf`` (no probability) add nothing, whatever the student says."""
    teacher_log_p = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    student_log_p = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_p = teacher_log_p.exp()
    kl = torch.where(teacher_p > 0, teacher_p * (teacher_log_p - student_log_p), torch.zeros_like(teacher_p))
    return kl.sum(-1).mean()


def logit_distillation_loss(student_logits, teacher_logits, target, alpha=0.5, temperature=1.5):
    r"""Hinton distillation (Mini-BERT, arXiv 2409.14810, eq. 9-10), the batch mean of

    ``alpha * CE(student, target) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))``.

    Args:
        student_logits (torch.Tensor): ``[N, n_items]`` scores at the masked positions.
        teacher_logits (torch.Tensor): ``[N, n_items]`` teacher scores there; ``-inf`` marks items the
            teacher gives no probability (padding, or outside a stored top-K).
        target (torch.LongTensor): ``[N]`` the true item of each row.
        alpha (float): weight of the hard-label cross-entropy; 1 is plain CE.
        temperature (float): T > 0; the ``T^2`` factor keeps the soft gradients' scale independent of T.
    """
    ce = F.cross_entropy(student_logits, target)
    if alpha == 1:
        return ce
    return alpha * ce + (1 - alpha) * temperature**2 * soft_target_kl(student_logits, teacher_logits, temperature)
