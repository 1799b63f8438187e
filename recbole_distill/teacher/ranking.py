r"""What every ranking builder shares: the history-free rule and the top-K it keeps.

In data where no user meets an item twice (MovieLens, most purchase logs) an item of the sample's own
history is never its next item, so a teacher that ranks it spends a candidate on a certain miss. With
``teacher_exclude_history`` (``~``: on exactly when the data has no repeated (user, item) pair) a builder
leaves every item the user had before the sample's target out of its top-K, over the user's whole
history, not only the ``MAX_ITEM_LIST_LENGTH`` items the sample carries.
"""

import numpy as np

from recbole_distill.errors import ConfigError


def resolve_exclude_history(setting, dataset, key="teacher_exclude_history"):
    """``teacher_exclude_history`` (or ``key``) as a bool: ``~`` is on for data without repeated (user, item) pairs."""
    if setting is None:
        return not dataset.has_repeats()
    if not isinstance(setting, bool):
        raise ConfigError(key, setting, "True, False or ~ (on when no user has an item twice)")
    return setting


def mask_history(scores, dataset, users, positions, fill=float("-inf")):
    """``scores`` ``[B, n_items]`` with ``fill`` where row ``r``'s user ``users[r]`` had the item before
    target position ``positions[r]`` (in place)."""
    rows, items = dataset.history_index(users, positions)
    scores[rows.to(scores.device), items.to(scores.device)] = fill
    return scores


def drop_history(topk, scores, dataset, users, positions, chunk=1 << 13):
    """Stored rankings without the items each row's user had before its target, the others moved up.

    ``topk`` ``[N, K]`` holds RecBole item ids (0: no candidate), ``scores`` their scores, row ``r`` for user
    ``users[r]`` at target position ``positions[r]``; the places freed at the end get id 0 and score 0.
    """
    topk, scores = topk.copy(), scores.copy()
    for start in range(0, len(topk), chunk):
        rows = slice(start, start + chunk)
        history_rows, items = dataset.history_index(users[rows], positions[rows])
        history = history_rows.numpy() * dataset.item_num + items.numpy()
        keys = np.arange(len(topk[rows]))[:, None] * dataset.item_num + topk[rows]
        dropped = np.isin(keys, history) & (topk[rows] > 0)
        order = np.argsort(dropped, axis=1, kind="stable")  # kept candidates first, in their order
        dropped = np.take_along_axis(dropped, order, axis=1)
        topk[rows] = np.where(dropped, 0, np.take_along_axis(topk[rows], order, axis=1))
        scores[rows] = np.where(dropped, 0, np.take_along_axis(scores[rows], order, axis=1))
    return topk, scores
