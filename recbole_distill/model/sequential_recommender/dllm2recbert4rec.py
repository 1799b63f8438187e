r"""
DLLM2RecBERT4Rec
################################################

Reference:
    Yu Cui et al. "Distillation Matters: Empowering Sequential Recommenders to Match the Performance of
    Large Language Models." In RecSys 2024.
    Fei Sun et al. "BERT4Rec: Sequential Recommendation with Bidirectional Encoder Representations from
    Transformer." In CIKM 2019.
"""

from recbole.data.interaction import Interaction
from recbole.model.sequential_recommender import BERT4Rec

from recbole_distill.model.checks import check_choice
from recbole_distill.model.dllm2rec import DLLM2Rec

SCORE_SOURCES = ("prefix", "cloze")


class DLLM2RecBERT4Rec(DLLM2Rec, BERT4Rec):
    r"""RecBole's BERT4Rec distilled from a teacher with DLLM2Rec.

    Its own loss stays the masked-item (Cloze) loss. ``rd_scores_from`` says which next-item scores ranking
    distillation reads:

    * ``prefix``: those ``full_sort_predict`` gives, the clean history with [MASK] appended; a second encoder
      pass per batch, since the Cloze input differs;
    * ``cloze``: one pass over the Cloze input with [MASK] appended after the history (as PreBERT trains): the
      Cloze positions give the Cloze loss and the appended [MASK] the next-item scores. The history is laid out
      as ``full_sort_predict`` lays it out (shifted left by one to make room), so a masked second item lands on
      position 0, which RecBole's Cloze loss reads as padding.
    """

    @classmethod
    def check_config(cls, config):
        super().check_config(config)
        check_choice(config, "rd_scores_from", SCORE_SOURCES)

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.rd_scores_from = config["rd_scores_from"]

    def _loss_and_scores(self, interaction):
        if self.rd_scores_from == "prefix":
            return super()._loss_and_scores(interaction)
        lengths = interaction[self.ITEM_SEQ_LEN]
        tokens = self.reconstruct_test_data(interaction[self.MASK_ITEM_SEQ], lengths)
        shifted = (interaction[self.MASK_INDEX] - 1).clamp(min=0)  # RecBole's padding index 0 stays padding
        cloze = Interaction({**interaction.interaction, self.MASK_ITEM_SEQ: tokens, self.MASK_INDEX: shifted})
        rec_loss = BERT4Rec.calculate_loss(self, cloze)  # its encoder pass is kept for the scores below
        hidden = self.gather_indexes(self.forward(tokens), lengths - 1)
        scores = hidden @ self.item_embedding.weight[: self.n_items].T + self.output_bias
        return rec_loss, scores
