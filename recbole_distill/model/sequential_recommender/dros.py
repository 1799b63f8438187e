r"""
DROS
################################################

Reference:
    Zhengyi Yang et al. "A Generic Learning Framework for Sequential Recommendation with Distribution
    Shifts." In SIGIR 2023.
    Yu Cui et al. "Distillation Matters: Empowering Sequential Recommenders to Match the Performance of
    Large Language Models." In RecSys 2024 (DROS is one of its three students).
"""

import torch
from recbole.model.sequential_recommender import SASRec

from recbole_distill.model.abstract_recommender import PluginRecommender
from recbole_distill.model.checks import check_number
from recbole_distill.model.losses import dro_loss, dro_propensity


class DROS(PluginRecommender, SASRec):
    r"""RecBole's SASRec trained with DROS's distributionally robust loss added to its own:
    ``L = L_SASRec + dro_alpha * mean_s L_DRO(s)`` (:func:`~recbole_distill.model.losses.dro_loss`), with the
    item propensities counted from the training targets. Inference is SASRec's.
    """

    @classmethod
    def check_config(cls, config):
        super().check_config(config)
        check_number(config, "dro_alpha", low=0, meaning="weight of the DRO loss; 0 is plain SASRec")
        check_number(config, "dro_beta", low=0, low_open=True, meaning="the DRO radius")
        check_number(config, "dro_propensity_power", low=0, meaning="exponent of the item propensities")

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.dro_alpha = config["dro_alpha"]
        self.dro_beta = config["dro_beta"]
        counts = torch.bincount(dataset.inter_feat[self.ITEM_ID], minlength=self.n_items)[: self.n_items]
        counts[0] = 0  # padding is never a target
        # derived from the training data at every construction, so not saved in checkpoints
        self.register_buffer("propensity", dro_propensity(counts, config["dro_propensity_power"]), persistent=False)

    def dro_loss(self, scores, targets):
        """``L_DRO`` of each row (``targets`` ``[B]``) or of each row and column (``[B, K]``)."""
        return dro_loss(scores, targets, self.propensity, self.dro_beta)

    def calculate_loss(self, interaction):
        if not self.dro_alpha:
            return super().calculate_loss(interaction)
        scores = self.full_sort_predict(interaction)  # L_DRO reads every item's score
        targets = interaction[self.POS_ITEM_ID]
        # SASRec's CE is the cross-entropy of these very scores: one encoder pass serves both terms
        rec_loss = self.loss_fct(scores, targets) if self.loss_type == "CE" else super().calculate_loss(interaction)
        return rec_loss + self.dro_alpha * self.dro_loss(scores, targets).mean()
