r"""
DLLM2RecBERT4Rec
################################################

Reference:
    Yu Cui et al. "Distillation Matters: Empowering Sequential Recommenders to Match the Performance of
    Large Language Models." In RecSys 2024.
    Fei Sun et al. "BERT4Rec: Sequential Recommendation with Bidirectional Encoder Representations from
    Transformer." In CIKM 2019.
"""

from recbole.model.sequential_recommender import BERT4Rec

from recbole_distill.model.dllm2rec import DLLM2Rec


class DLLM2RecBERT4Rec(DLLM2Rec, BERT4Rec):
    r"""RecBole's BERT4Rec distilled from a teacher with DLLM2Rec.

    Its own loss stays the masked-item (Cloze) loss; ranking distillation acts on the next-item scores
    of the whole prefix with [MASK] appended, the scores ``full_sort_predict`` gives. That takes a second
    encoder pass per batch, since the Cloze input and the prefix differ.
    """
