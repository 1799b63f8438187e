r"""
DLLM2RecSASRec
################################################

Reference:
    Yu Cui et al. "Distillation Matters: Empowering Sequential Recommenders to Match the Performance of
    Large Language Models." In RecSys 2024.
    Wang-Cheng Kang et al. "Self-Attentive Sequential Recommendation." In ICDM 2018.
"""

from recbole.model.sequential_recommender import SASRec

from recbole_distill.model.dllm2rec import DLLM2Rec


class DLLM2RecSASRec(DLLM2Rec, SASRec):
    r"""RecBole's SASRec distilled from a teacher with DLLM2Rec: ranking distillation on its next-item
    scores plus collaborative embedding distillation on its (tied) item embedding."""
