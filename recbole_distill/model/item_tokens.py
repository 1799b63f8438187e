r"""Items as words of a pre-trained language model (PreBERT, Li et al. 2024, arXiv 2409.14810, sec. 3.1).

Each item is mapped one-to-one onto an existing vocabulary token by a seeded random permutation; no
token is added and no item text is used. Special tokens and never-trained ``[unused]`` tokens are left
out, so an item never collides with ``[PAD]``, ``[CLS]``, ``[SEP]``, ``[MASK]`` or ``[UNK]``.
"""

import re

import numpy as np
import torch

from recbole_distill.errors import RecBoleDistillError

_UNUSED = re.compile(r"^\[unused\d+\]$")


def item_token_map(tokenizer, n_items, seed):
    """``[n_items]`` vocabulary ids: entry ``i`` is item ``i``'s token; entry 0 (RecBole's padding) is ``[PAD]``.

    The permutation depends only on ``seed`` and the vocabulary, so the same seed gives the same map.
    """
    special = set(tokenizer.all_special_ids)
    admissible = np.array(
        [i for token, i in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
         if i not in special and not _UNUSED.match(token)],
        dtype=np.int64,
    )
    if len(admissible) < n_items - 1:
        raise RecBoleDistillError(
            f"the language model's vocabulary has {len(admissible)} ordinary tokens, fewer than the "
            f"{n_items - 1} items to map one-to-one onto them; set plm_path to a model with a larger vocabulary."
        )
    chosen = np.random.default_rng(seed).permutation(admissible)[: n_items - 1]
    return torch.from_numpy(np.r_[tokenizer.pad_token_id, chosen])


def mask_items(items, maskable, ratio, n_items, mask_id, generator=None):
    r"""BERT's masking over item positions: each maskable position is chosen with probability ``ratio``;
    a chosen position becomes ``mask_id`` 80 % of the time, a random item 10 %, and stays as it is 10 %.

    Args:
        items (torch.LongTensor): ``[B, L]`` item ids (0 = padding).
        maskable (torch.BoolTensor): ``[B, L]`` positions that may be chosen.
        ratio (float): the mask ratio rho.
        n_items (int): item ids are ``1..n_items-1``; random replacements are drawn from them.
        mask_id (int): the id written at masked positions.

    Returns:
        (torch.LongTensor, torch.BoolTensor): the masked items and the chosen positions.
    """
    draw = torch.rand(items.shape, generator=generator, device=items.device)
    chosen = maskable & (draw < ratio)
    action = torch.rand(items.shape, generator=generator, device=items.device)
    random_items = torch.randint(1, n_items, items.shape, generator=generator, device=items.device)
    masked = torch.where(chosen & (action < 0.8), torch.full_like(items, mask_id), items)
    masked = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_items, masked)
    return masked, chosen
