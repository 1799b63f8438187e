r"""
DLLM2RecGRU4Rec
################################################

Reference:
    Yu Cui et al. "Distillation Matters: Empowering Sequential Recommenders to Match the Performance of
    Large Language Models." In RecSys 2024.
    Yong Kiam Tan et al. "Improved Recurrent Neural Networks for Session-based Recommendations." In DLRS 2016.
"""

from recbole.model.sequential_recommender import GRU4Rec

from recbole_distill.model.dllm2rec import DLLM2Rec


class DLLM2RecGRU4Rec(DLLM2Rec, GRU4Rec):
    r"""RecBole's GRU4Rec distilled from a teacher with DLLM2Rec: ranking distillation on its next-item
    scores plus collaborative embedding distillation on its (tied) item embedding."""
