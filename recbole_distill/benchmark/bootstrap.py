r"""Per-user test metrics and paired bootstrap intervals: is a student's gain over its twin more than noise?

A distilled student and its plain twin are tested on the same users; the gain is the ratio of their mean
per-user metric (e.g. NDCG@10). Resampling the users with replacement, both models together, gives the
gain's sampling distribution over users (Efron & Tibshirani's paired bootstrap); its 2.5 and 97.5
percentiles are the 95 % interval. The share of the teacher's lead a student recovers,
``(student - twin) / (teacher - twin)``, is resampled the same way when the teacher's per-user values exist.
"""

import inspect

import numpy as np
import torch
from recbole.evaluator.register import metrics_dict


@torch.no_grad()
def evaluate_per_user(trainer, eval_data, metric, load_best_model=True):
    """RecBole's evaluation of ``eval_data`` and, per evaluated user, the value of ``metric`` (``"NDCG@10"``).

    The values come from the very data RecBole's evaluator averages (its ``rec.topk`` struct and the
    metric's own ``metric_info``), so their mean is the result's ``metric``.

    Returns:
        tuple: ``(result, users, values)``: RecBole's result dict, the users' tokens and their values.
    """
    name, k = metric.lower().split("@")
    captured = {}
    evaluator = trainer.evaluator

    def keep(struct):
        captured["struct"] = struct
        return type(evaluator).evaluate(evaluator, struct)

    evaluator.evaluate = keep
    try:
        result = trainer.evaluate(eval_data, load_best_model=load_best_model, show_progress=False)
    finally:
        del evaluator.evaluate
    topk = captured["struct"].get("rec.topk")
    pos_index, pos_len = topk[:, :-1].bool().numpy(), topk[:, -1].numpy()
    metric_object = metrics_dict[name](trainer.config)
    arguments = (pos_index, pos_len)[: len(inspect.signature(metric_object.metric_info).parameters)]
    values = metric_object.metric_info(*arguments)[:, int(k) - 1]
    dataset = eval_data._dataset
    users = dataset.id2token(dataset.uid_field, dataset.inter_feat[dataset.uid_field].numpy())
    return result, np.asarray(users), np.asarray(values, dtype=np.float64)


def paired_bootstrap(student, twin, teacher=None, n_resamples=10000, seed=2020, resamples=None):
    r"""95 % intervals of a student's gain over its twin (and of its share of the teacher's lead).

    Args:
        student, twin (array): per-user values of the two models, on the same users in the same order.
        teacher (array, optional): the teacher's per-user values on those users.
        n_resamples (int): bootstrap resamples of the users.
        seed (int): seed of the resampling, so an interval can be reproduced.
        resamples (array, optional): ``[n_resamples, n_users]`` user indices to use instead of random ones.

    Returns:
        dict: ``gain`` (``mean(student) / mean(twin) - 1``) with ``gain_low`` / ``gain_high``, and, with a
        teacher, ``share`` (``(mean(student) - mean(twin)) / (mean(teacher) - mean(twin))``) with
        ``share_low`` / ``share_high``.
    """
    columns = [np.asarray(student, float), np.asarray(twin, float)]
    if teacher is not None:
        columns.append(np.asarray(teacher, float))
    if resamples is None:
        resamples = np.random.default_rng(seed).integers(0, len(columns[0]), (n_resamples, len(columns[0])))
    means = [column.mean() for column in columns]
    resampled = [column[resamples].mean(axis=1) for column in columns]

    def interval(name, point, draws):
        low, high = np.percentile(draws, [2.5, 97.5])
        return {name: float(point), f"{name}_low": float(low), f"{name}_high": float(high)}

    result = interval("gain", means[0] / means[1] - 1, resampled[0] / resampled[1] - 1)
    if teacher is not None:
        result.update(interval("share", (means[0] - means[1]) / (means[2] - means[1]),
                               (resampled[0] - resampled[1]) / (resampled[2] - resampled[1])))
    return result
