r"""
TeacherRanking
################################################

The teacher's stored rankings, played back as a RecBole model, so that RecBole's own full-ranking
evaluator measures the teacher exactly as it measures the students (DESIGN section 5).
"""

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType

from recbole_distill.data.dataset import TEACHER_TOPK
from recbole_distill.model.abstract_recommender import PluginRecommender


class TeacherRanking(PluginRecommender, SequentialRecommender):
    r"""Scores each sample by its row in the teacher artifact: the teacher's top-K items rank first, in the
    teacher's order (score ``K - rank``); every other item ranks after them in one fixed random order
    (seeded by ``seed``), since the teacher did not rank them. It has nothing to learn; like RecBole's
    ``Pop`` it carries one dummy parameter so that RecBole's trainer runs it unchanged.

    With K = 20 stored it reproduces the teacher checkpoint's @10 and @20 test metrics, which ``teacher.yaml``
    records: the history-free ones (``test_result_without_history``) under ``eval_exclude_history``, the
    plain ones for a folder that kept history items, evaluated as RecBole does.
    """

    input_type = InputType.POINTWISE

    @classmethod
    def teacher_parts(cls, config):
        """Rankings, for every train, valid and test sample."""
        return {"ranking", "eval_ranking"}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.k = config["teacher_k"]
        self.fake_loss = torch.nn.Parameter(torch.zeros(1))
        generator = torch.Generator().manual_seed(config["seed"])
        # unranked items: scores in [-2, -1), below every teacher candidate, in a target-blind order
        self.register_buffer("tail", -2 + torch.rand(self.n_items, generator=generator))


    def calculate_loss(self, interaction):
        return self.fake_loss

    def full_sort_predict(self, interaction):
        topk = interaction[TEACHER_TOPK]
        scores = self.tail.repeat(len(topk), 1)
        rank_scores = torch.arange(self.k, 0, -1, dtype=scores.dtype, device=scores.device).expand_as(topk)
        scores.scatter_(1, topk, rank_scores)
        scores[:, 0] = -torch.inf  # padding (and empty candidate slots, which point at it)
        return scores

    def predict(self, interaction):
        scores = self.full_sort_predict(interaction)
        return scores.gather(1, interaction[self.ITEM_ID].unsqueeze(1)).squeeze(1)
