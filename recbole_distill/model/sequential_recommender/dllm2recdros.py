r"""
DLLM2RecDROS
################################################

Reference:
    Yu Cui et al. "Distillation Matters: Empowering Sequential Recommenders to Match the Performance of
    Large Language Models." In RecSys 2024.
    Zhengyi Yang et al. "A Generic Learning Framework for Sequential Recommendation with Distribution
    Shifts." In SIGIR 2023.
"""

from recbole_distill.data.dataset import TEACHER_TOPK
from recbole_distill.model.dllm2rec import DLLM2Rec
from recbole_distill.model.sequential_recommender.dros import DROS


class DLLM2RecDROS(DLLM2Rec, DROS):
    r"""DROS distilled from a teacher with DLLM2Rec. As in the official code, each teacher candidate is also a
    positive of the DRO loss: ``L_d`` gains ``dro_alpha * mean_s sum_k w_sk * L_DRO(s, t_k)``, with the
    candidates' importance weights ``w_sk``. (The official code broadcasts a ``[B, 1]`` weight against a
    ``[B]`` loss there, which averages weights and losses separately; this is the per-sample product it means.)
    """

    def _ranking_distillation(self, scores, interaction, weights=None):
        weights = self._ranking_weights(scores, interaction) if weights is None else weights
        loss = super()._ranking_distillation(scores, interaction, weights)
        if not self.dro_alpha:
            return loss
        candidate_dro = self.dro_loss(scores, interaction[TEACHER_TOPK])  # [B, K]
        return loss + self.dro_alpha * (weights * candidate_dro).sum(dim=1).mean()
