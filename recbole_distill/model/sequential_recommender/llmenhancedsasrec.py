r"""
LLMEnhancedSASRec
################################################

Reference:
    Qidong Liu et al. "LLM-ESR: Large Language Models Enhancement for Long-tailed Sequential
    Recommendation." In NeurIPS 2024.
    Qidong Liu et al. "LLMEmb: Large Language Model Can Be a Good Embedding Generator for Sequential
    Recommendation." In AAAI 2025.
    Anton Klenitskiy and Alexey Vasilev. "Turning Dross Into Gold Loss: is BERT4Rec really better than
    SASRec?" In RecSys 2023.
"""

from contextlib import nullcontext

import torch
from recbole.model.sequential_recommender import SASRec

from recbole_distill.model.abstract_recommender import PluginRecommender
from recbole_distill.model.checks import check_choice, check_number
from recbole_distill.model.layers import PROJECTORS, CollaborativeItemEmbedding


class LLMEnhancedSASRec(PluginRecommender, SASRec):
    r"""SASRec over frozen language-model item embeddings, trained at every position of whole sequences.

    Item representation (as LLM-ESR and LLMEmb): ``e_i = b_i + w_t * g(z_i)``, the item's frozen
    language-model embedding ``z_i`` of its text (``item_text_embedding_path``: MiniLM sentence embeddings
    or an LLM's hidden states) through a learned adapter ``g``, plus a learned ID embedding ``b_i``; the
    same table feeds the encoder and the tied output scores. ``item_text_weight: 0`` is the same model
    without the language model (ID embeddings only).

    Training (SASRec with full cross-entropy, Klenitskiy & Vasilev): ``train_windows`` keeps one training
    sample per window of ``MAX_ITEM_LIST_LENGTH`` targets of each user, and the loss is the cross-entropy
    over all items at every position of the window, so an epoch costs one encoder pass per window instead
    of one per prefix. :meth:`prefix_scores` ranks every prefix of a window in one pass (what the teacher
    export uses); inference is SASRec's ``full_sort_predict``.
    """

    saved_teacher_tables = ("item_text_embedding",)

    @classmethod
    def check_config(cls, config):
        check_number(config, "item_text_weight", low=0, meaning="w_t; 0 trains on ID embeddings only")
        check_choice(config, "item_text_adapter", PROJECTORS)
        check_choice(config, "train_windows", (True, False))
        check_choice(config, "loss_type", ("CE",))

    @classmethod
    def teacher_parts(cls, config):
        """The item-text embeddings, unless ``item_text_weight`` is 0."""
        return {"item_text"} if config["item_text_weight"] else set()

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        if config["item_text_weight"]:
            self.item_embedding = CollaborativeItemEmbedding(
                self.item_embedding,
                dataset.item_text_embedding,
                weight=config["item_text_weight"],
                projector=config["item_text_adapter"],
            )
            self.item_embedding.projector.apply(self._init_weights)

    def encode(self, item_seq):
        """Hidden states ``[B, L, H]`` after every position of ``item_seq`` (causal: position j reads items 0..j)."""
        positions = torch.arange(item_seq.size(1), device=item_seq.device)
        hidden = self.item_embedding(item_seq) + self.position_embedding(positions)
        hidden = self.dropout(self.LayerNorm(hidden))
        return self.trm_encoder(hidden, self.get_attention_mask(item_seq), output_all_encoded_layers=True)[-1]

    def forward(self, item_seq, item_seq_len):
        return self.gather_indexes(self.encode(item_seq), item_seq_len - 1)

    def _fused_table(self):
        """Within this scope a training step computes the fused item table once (encoder input and scores)."""
        if isinstance(self.item_embedding, CollaborativeItemEmbedding):
            return self.item_embedding.one_step()
        return nullcontext()

    def calculate_loss(self, interaction):
        item_seq, lengths = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        # the item after every position: the history shifted by one, then the sample's own target
        targets = torch.cat([item_seq[:, 1:], torch.zeros_like(item_seq[:, :1])], dim=1)
        targets[torch.arange(len(targets), device=targets.device), lengths - 1] = interaction[self.POS_ITEM_ID]
        chosen = targets > 0
        with self._fused_table():
            hidden = self.encode(item_seq)[chosen]
            logits = hidden @ self.item_embedding.weight.T
        return self.loss_fct(logits, targets[chosen])

    @torch.no_grad()
    def prefix_scores(self, item_seq):
        """``[B, L, n_items]``: at position j, the scores of the item after ``item_seq[:, :j + 1]``."""
        return self.encode(item_seq) @ self.item_embedding.weight.T
