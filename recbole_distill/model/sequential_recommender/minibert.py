r"""
MiniBERT
################################################

Reference:
    Li Li, Mingyue Cheng et al. "Pre-trained Language Model and Knowledge Distillation for Lightweight
    Sequential Recommendation." arXiv 2409.14810, 2024.
    Fei Sun et al. "BERT4Rec: Sequential Recommendation with Bidirectional Encoder Representations from
    Transformer." In CIKM 2019.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from recbole.model.sequential_recommender import BERT4Rec

from recbole_distill.data.dataset import TEACHER_SCORE, TEACHER_TOPK
from recbole_distill.errors import ConfigError, RecBoleDistillError
from recbole_distill.model.abstract_recommender import PluginRecommender
from recbole_distill.model.checks import check_choice, check_number, check_whole
from recbole_distill.model.losses import soft_target_kl, teacher_logits_from_topk
from recbole_distill.model.sequential_recommender.prebert import PreBERT

TEACHER_MODES = ("online", "artifact")


def load_frozen_teacher(model_file, dataset, device):
    """A PreBERT checkpoint as a frozen teacher, after checking it numbers the items as ``dataset`` does."""
    path = Path(model_file)
    if not path.is_file():
        raise ConfigError("teacher_model_file", model_file, "a PreBERT checkpoint saved by run_recbole_distill.py")
    checkpoint = torch.load(path, map_location=device, weights_only=False)
    teacher_config = checkpoint["config"]
    if teacher_config["model"] != "PreBERT":
        raise ConfigError("teacher_model_file", model_file, f"a PreBERT checkpoint, not a {teacher_config['model']} one")
    items = (checkpoint.get("other_parameter") or {}).get("dataset_items")
    if items != list(dataset.field2id_token[dataset.iid_field]):
        raise RecBoleDistillError(
            f"the teacher checkpoint '{model_file}' was trained on other items than this dataset has "
            f"(teacher: dataset '{teacher_config['dataset']}'); train PreBERT with the same dataset and "
            "filter settings as the student."
        )
    teacher_config["plm_init"] = "random"  # the weights come from the checkpoint, not the language model folder
    teacher = PreBERT(teacher_config, dataset)
    teacher.load_state_dict(checkpoint["state_dict"])
    return teacher.to(device).eval().requires_grad_(False)


class MiniBERT(PluginRecommender, BERT4Rec):
    r"""A small BERT4Rec (paper: 2 layers, hidden 256, 4 heads) distilled from PreBERT's logits.

    Loss (eq. 9-10): ``alpha * CE + (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))``.

    - ``kd_teacher: online`` (the paper's method): a frozen PreBERT checkpoint (``teacher_model_file``)
      reads the same masked sequence and gives its logits at the masked positions, where the CE is
      BERT4Rec's own Cloze loss.
    - ``kd_teacher: artifact`` (cheap): the teacher's stored top-K next-item scores (``teacher_path``)
      are the soft target of the scores ``full_sort_predict`` gives for the prefix (history, then
      [MASK]); the hard part stays BERT4Rec's Cloze loss. Items outside the top-K get no teacher mass.

    The teacher is not part of the student's state: checkpoints and inference are BERT4Rec's.
    """

    is_student = True
    loss_names = ("ce_loss", "kd_loss")

    @classmethod
    def check_config(cls, config):
        """Fail before any data is loaded if a distillation key is out of range."""
        check_number(config, "kd_alpha", low=0, high=1, meaning="weight of the hard-label cross-entropy")
        check_number(config, "kd_temperature", low=0, low_open=True, meaning="softmax temperature T")
        check_choice(config, "kd_teacher", TEACHER_MODES)
        check_whole(config, "teacher_k", low=1, meaning="teacher candidates per sample")
        check_choice(config, "loss_type", ("CE",))
        if config["kd_teacher"] == "online" and config["kd_alpha"] < 1 and not config["teacher_model_file"]:
            raise ConfigError(
                "teacher_model_file", None, "the PreBERT checkpoint to learn from (kd_teacher: online); "
                "or kd_teacher: artifact to learn from stored teacher rankings"
            )

    @classmethod
    def teacher_parts(cls, config):
        """Stored teacher rankings in ``artifact`` mode; nothing in ``online`` mode."""
        return {"ranking"} if config["kd_teacher"] == "artifact" and config["kd_alpha"] < 1 else set()

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.kd_alpha = config["kd_alpha"]
        self.kd_temperature = config["kd_temperature"]
        self.kd_teacher = config["kd_teacher"] if self.kd_alpha < 1 else None
        self.teacher_score_kind = dataset.teacher_score_kind
        if self.kd_teacher == "online":
            # outside the module tree: not saved, not counted, never switched to train mode
            object.__setattr__(self, "teacher", load_frozen_teacher(config["teacher_model_file"], dataset, self.device))

    def _item_logits(self, hidden):
        return hidden @ self.item_embedding.weight[: self.n_items].T + self.output_bias

    def calculate_loss(self, interaction):
        if self.kd_teacher is None:
            ce = super().calculate_loss(interaction)
            return ce, torch.zeros_like(ce)
        if self.kd_teacher == "artifact":
            ce = super().calculate_loss(interaction)
            student = self.full_sort_predict(interaction)
            teacher = teacher_logits_from_topk(
                interaction[TEACHER_TOPK], interaction[TEACHER_SCORE], self.n_items, self.teacher_score_kind
            )
        else:
            masked_items, masked_index = interaction[self.MASK_ITEM_SEQ], interaction[self.MASK_INDEX]
            targets = interaction[self.POS_ITEMS]
            chosen = targets > 0  # RecBole pads the masked positions with 0 on the left
            hidden = self.forward(masked_items)
            hidden = hidden.gather(1, masked_index[..., None].expand(-1, -1, hidden.size(-1)))
            student = self._item_logits(hidden[chosen])
            ce = F.cross_entropy(student, targets[chosen])
            with torch.no_grad():
                teacher = self.teacher.masked_logits(masked_items, masked_index)[chosen]
        kd = soft_target_kl(student, teacher, self.kd_temperature)
        return self.kd_alpha * ce, (1 - self.kd_alpha) * self.kd_temperature**2 * kd
