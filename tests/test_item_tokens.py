"""Items as vocabulary tokens, and BERT's 80/10/10 masking, with the real MiniLM tokenizer."""

import pytest
import torch

from recbole_distill.errors import RecBoleDistillError
from recbole_distill.model.item_tokens import item_token_map, mask_items
from recbole_distill.model.plm import default_plm_path, load_tokenizer_and_config


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer_and_config(default_plm_path())[0]


def test_map_is_a_seeded_bijection_away_from_special_tokens(tokenizer):
    tokens = item_token_map(tokenizer, 1683, seed=7)
    assert tokens[0] == tokenizer.pad_token_id  # RecBole's padding stays padding
    items = tokens[1:].tolist()
    assert len(set(items)) == len(items) == 1682  # one-to-one
    vocab = tokenizer.convert_ids_to_tokens(items)
    assert not set(items) & set(tokenizer.all_special_ids)
    assert not [t for t in vocab if t.startswith("[unused")]
    assert torch.equal(item_token_map(tokenizer, 1683, seed=7), tokens)  # same seed, same map
    assert not torch.equal(item_token_map(tokenizer, 1683, seed=8), tokens)


def test_too_small_a_vocabulary_is_refused(tokenizer):
    with pytest.raises(RecBoleDistillError, match="fewer than the 40000 items"):
        item_token_map(tokenizer, 40001, seed=0)


def test_masking_follows_80_10_10():
    torch.manual_seed(0)
    n, n_items, mask_id = 400_000, 1000, 1000
    items = torch.randint(1, n_items, (n, 1))
    maskable = torch.ones(n, 1, dtype=torch.bool)
    maskable[: n // 2] = False  # half the positions may not be chosen at all
    masked, chosen = mask_items(items, maskable, ratio=0.4, n_items=n_items, mask_id=mask_id)
    assert not chosen[: n // 2].any() and torch.equal(masked[: n // 2], items[: n // 2])
    picked = chosen[n // 2 :].sum().item()
    # binomial bounds, about 6 standard deviations wide
    assert abs(picked / (n // 2) - 0.4) < 6 * (0.4 * 0.6 / (n // 2)) ** 0.5
    as_mask = (masked[chosen] == mask_id).float().mean().item()
    kept = (masked[chosen] == items[chosen]).float().mean().item()  # includes random draws of the same item
    assert abs(as_mask - 0.8) < 0.005
    assert abs(kept - (0.1 + 0.1 / (n_items - 1))) < 0.004
    replaced = masked[chosen & (masked != mask_id) & (masked != items)]
    assert replaced.min() >= 1 and replaced.max() < n_items  # random replacements are real items
