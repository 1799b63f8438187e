r"""
PreBERT
################################################

Reference:
    Li Li, Mingyue Cheng et al. "Pre-trained Language Model and Knowledge Distillation for Lightweight
    Sequential Recommendation." arXiv 2409.14810, 2024.
"""

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType
from torch import nn
from transformers import BertModel
from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

from recbole_distill.model.abstract_recommender import PluginRecommender
from recbole_distill.model.checks import check_choice, check_number, check_whole
from recbole_distill.model.item_tokens import item_token_map, mask_items
from recbole_distill.model.plm import default_plm_path, load_tokenizer_and_config


class PreBERT(PluginRecommender, SequentialRecommender):
    r"""A pre-trained BERT fine-tuned on item sequences, items being words of its vocabulary.

    Each item is a vocabulary token (a seeded random one-to-one map, kept in the checkpoint as
    ``item_tokens``); the encoder keeps its pre-trained weights (``plm_init: pretrained``) or starts from
    scratch with the same architecture (``random``, the paper's ablation). Input: ``[CLS] i_1 ... i_n``.
    Training is masked-item prediction on the sample's whole sequence (history and next item): the next
    item is always masked, each history item with probability ``mask_ratio`` (80 % [MASK], 10 % a random
    item, 10 % kept); the loss is cross-entropy over the items only, whose output embeddings are tied to
    their input token embeddings as in BERT's MLM head. Next-item scores: ``[CLS] history [MASK]``.

    ``train_prefix_ratio`` < 1 trains each batch on a random share of its prefixes: RecBole's augmented
    prefixes overlap, so a share covers the data while an epoch costs that share of the time.

    Only the rows of the vocabulary that are used (the items' tokens, [PAD], [MASK], [CLS]) are kept, in
    item-id order: the same model as the full vocabulary, without updating 30k unused rows every step.
    """

    input_type = InputType.POINTWISE

    @classmethod
    def check_config(cls, config):
        """Fail before any data is loaded if a PreBERT key is out of range."""
        check_choice(config, "plm_init", ("pretrained", "random"))
        check_whole(config, "token_map_seed", meaning="seed of the item-to-token map")
        check_number(config, "mask_ratio", low=0, high=1, meaning="rho, the share of history items masked")
        check_number(config, "train_prefix_ratio", low=0, high=1, low_open=True, meaning="share of prefixes per epoch")
        check_choice(config, "loss_type", ("CE",))

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.plm_path = config["plm_path"] or default_plm_path()
        self.mask_ratio = config["mask_ratio"]
        self.train_prefix_ratio = config["train_prefix_ratio"]

        tokenizer, bert_config = load_tokenizer_and_config(self.plm_path, bert_only=True)
        bert_config.hidden_dropout_prob = config["hidden_dropout_prob"]
        bert_config.attention_probs_dropout_prob = config["attn_dropout_prob"]
        if config["plm_init"] == "pretrained":
            self.bert = BertModel.from_pretrained(
                self.plm_path, config=bert_config, add_pooling_layer=False, local_files_only=True
            )
        else:
            self.bert = BertModel(bert_config, add_pooling_layer=False)
        # ids: 0 = [PAD], 1..n_items-1 = items, n_items = [MASK] (RecBole's BERT4Rec convention), then [CLS]
        token_map = item_token_map(tokenizer, self.n_items, config["token_map_seed"])
        tokens = torch.cat([token_map, torch.tensor([tokenizer.mask_token_id, tokenizer.cls_token_id])])
        self.register_buffer("item_tokens", tokens)
        # RecBole's item tokens in id order, saved with the checkpoint so that a model loading this one
        # as its teacher can check that both number the items alike
        self.other_parameter_name = ["dataset_items"]
        self.dataset_items = list(dataset.field2id_token[dataset.iid_field])
        vocabulary = self.bert.get_input_embeddings()
        self.bert.set_input_embeddings(nn.Embedding.from_pretrained(vocabulary.weight[tokens].detach(), freeze=False))
        self.cls_id = self.n_items + 1
        self.head = BertPredictionHeadTransform(bert_config)  # the MLM head, decoding with the word embeddings
        self.item_bias = nn.Parameter(torch.zeros(self.n_items))
        self.loss_fct = nn.CrossEntropyLoss()

    def encode(self, items):
        """Hidden states ``[B, L, H]`` after the MLM head transform, for items ``[B, L]`` (``n_items`` = [MASK])."""
        ids = torch.cat([torch.full_like(items[:, :1], self.cls_id), items], dim=1)
        hidden = self.bert(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state
        return self.head(hidden[:, 1:])

    def item_logits(self, hidden):
        """Scores of every item (its token's output embedding, plus a bias) for hidden states ``[..., H]``."""
        logits = hidden @ self.item_embeddings().T + self.item_bias
        logits[..., 0] = float("-inf")  # padding is never an answer
        return logits

    def masked_logits(self, masked_items, masked_index):
        """Item scores at positions ``masked_index`` ``[B, M]`` of RecBole-style masked sequences (as
        BERT4Rec's ``Mask_item_id_list``, mask id ``n_items``): ``[B, M, n_items]``."""
        hidden = self.encode(masked_items)
        gathered = hidden.gather(1, masked_index[..., None].expand(-1, -1, hidden.size(-1)))
        return self.item_logits(gathered)

    def _with_next(self, interaction, next_items):
        """The history with ``next_items`` written after its last item: ``[B, L + 1]``."""
        item_seq = interaction[self.ITEM_SEQ]
        lengths = interaction[self.ITEM_SEQ_LEN]
        items = torch.cat([item_seq, torch.zeros_like(item_seq[:, :1])], dim=1)
        items[torch.arange(len(items), device=items.device), lengths] = next_items
        return items, lengths

    def item_embeddings(self):
        """``[n_items, H]`` the items' token embeddings (row 0 is [PAD]), e.g. as teacher item embeddings."""
        return self.bert.get_input_embeddings().weight[: self.n_items]

    def calculate_loss(self, interaction):
        if self.train_prefix_ratio < 1:  # a fresh random share of the batch's prefixes
            size = len(interaction)
            interaction = interaction[torch.randperm(size)[: max(1, round(size * self.train_prefix_ratio))]]
        targets = interaction[self.POS_ITEM_ID]
        items, lengths = self._with_next(interaction, targets)
        positions = torch.arange(items.size(1), device=items.device)
        history = positions[None, :] < lengths[:, None]
        masked, chosen = mask_items(items, history, self.mask_ratio, self.n_items, self.n_items)
        rows = torch.arange(len(items), device=items.device)
        masked[rows, lengths] = self.n_items
        chosen[rows, lengths] = True
        logits = self.item_logits(self.encode(masked)[chosen])
        return self.loss_fct(logits, items[chosen])

    def full_sort_predict(self, interaction):
        mask = torch.full_like(interaction[self.ITEM_SEQ_LEN], self.n_items)
        items, lengths = self._with_next(interaction, mask)
        hidden = self.encode(items)
        return self.item_logits(hidden[torch.arange(len(items), device=items.device), lengths])

    def predict(self, interaction):
        scores = self.full_sort_predict(interaction)
        return scores.gather(1, interaction[self.ITEM_ID][:, None])[:, 0]
