r"""DLLM2Rec distillation, written once for every RecBole sequential student.

Reference:
    Yu Cui et al. "Distillation Matters: Empowering Sequential Recommenders to Match the Performance of
    Large Language Models." In RecSys 2024 (arXiv 2405.00338).
"""

import importlib
import importlib.util
from contextlib import contextmanager, nullcontext

import torch
from recbole.model.abstract_recommender import AbstractRecommender, SequentialRecommender
from torch import nn

from recbole_distill.data.dataset import TEACHER_SCORE, TEACHER_TARGET_SCORE, TEACHER_TOPK
from recbole_distill.errors import ConfigError
from recbole_distill.model.abstract_recommender import PluginRecommender
from recbole_distill.model.checks import check_choice, check_number, check_whole, is_number
from recbole_distill.model.layers import PROJECTORS, SCOPES, CollaborativeItemEmbedding
from recbole_distill.model.losses import (
    CONFIDENCE_MODES,
    LIKELIHOODS,
    NEGATIVE_TERMS,
    ranking_distillation_loss,
    ranking_distillation_weights,
)


class DLLM2Rec(PluginRecommender):
    r"""Mixin that turns a RecBole sequential model into a DLLM2Rec student.

    Put it before the RecBole model: ``class DLLM2RecSASRec(DLLM2Rec, SASRec)``. It

    - replaces ``item_embedding`` with a :class:`CollaborativeItemEmbedding` over the teacher's item
      embeddings (collaborative embedding distillation, eq. 12-13; off when ``ed_weight`` is 0);
    - returns ``(L_s, lambda_d * L_d)`` from ``calculate_loss``: the model's own RecBole loss and the
      importance-aware ranking distillation loss (eq. 5-11) on the scores ``full_sort_predict`` gives
      for the training prefix (off when ``rd_weight`` is 0).

    The RecBole model's ``forward``, ``predict`` and ``full_sort_predict`` run unchanged, so inference
    costs what the plain model costs. When the base loss and the distillation term read the same
    encoder input (SASRec, GRU4Rec), the encoder runs once per batch; when the base loss is a loss module
    over the very scores ``full_sort_predict`` gives (RecBole's CE of SASRec, GRU4Rec, NARM, ..., checked
    once, at the first training step), ``L_d`` reads those scores, so the item-scoring product and its
    backward run once too.
    """

    is_student = True
    loss_names = ("rec_loss", "rd_loss")
    saved_teacher_tables = ("teacher_item_embedding",)

    @classmethod
    def check_config(cls, config):
        """Fail before any data is loaded if a distillation key is missing or out of range."""
        super().check_config(config)
        check_number(config, "rd_weight", low=0, meaning="lambda_d; 0 switches ranking distillation off")
        check_number(config, "ed_weight", low=0, meaning="w_ed; 0 switches embedding distillation off")
        gammas = config["rd_gammas"]
        if not (
            isinstance(gammas, (list, tuple))
            and len(gammas) == 3
            and all(is_number(g) and g >= 0 for g in gammas)
            and sum(gammas) > 0
        ):
            raise ConfigError(
                "rd_gammas", gammas, "three numbers >= 0, not all 0: the position, confidence and consistency mix"
            )
        check_number(config, "rd_beta", low=0, low_open=True, meaning="temperature of the position weight")
        check_whole(config, "teacher_k", low=1, meaning="teacher candidates per sample")
        check_choice(config, "rd_confidence", CONFIDENCE_MODES)
        check_choice(config, "rd_likelihood", LIKELIHOODS)
        check_choice(config, "rd_negative", (None,) + NEGATIVE_TERMS)
        check_choice(config, "rd_negative_exclude_history", (True, False))
        check_choice(config, "ed_projector", PROJECTORS)
        check_choice(config, "ed_scope", SCOPES)
        check_choice(config, "ed_offset", (True, False))
        if config["ed_weight"] == 0 and not config["ed_offset"]:
            raise ConfigError("ed_offset", False, "True when ed_weight is 0, or the items would have no embedding")
        if config["rd_weight"] and cls.full_sort_predict is AbstractRecommender.full_sort_predict:
            raise ConfigError(
                "rd_weight", config["rd_weight"], f"0 for {cls.__name__}: ranking distillation reads the "
                "next-item scores of full_sort_predict, which this model does not have"
            )

    @classmethod
    def teacher_parts(cls, config):
        """The teacher artifacts this config needs: ``ranking``, ``embedding``, both or none."""
        return {part for part, key in (("ranking", "rd_weight"), ("embedding", "ed_weight")) if config[key]}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.rd_weight = config["rd_weight"]
        self.rd_gammas = tuple(config["rd_gammas"])
        self.rd_beta = config["rd_beta"]
        self.rd_confidence = config["rd_confidence"]
        self.rd_likelihood = config["rd_likelihood"]
        self.rd_negative = config["rd_negative"]
        self.rd_negative_exclude_history = config["rd_negative_exclude_history"]
        self.teacher_score_kind = dataset.teacher_score_kind

        if config["ed_weight"]:
            if not isinstance(getattr(self, "item_embedding", None), nn.Embedding):
                raise ConfigError(
                    "ed_weight", config["ed_weight"], f"0 for {type(self).__name__}: embedding distillation fuses the "
                    "teacher's embeddings into the model's item_embedding table, which this model does not have "
                    "(ranking distillation works without it)"
                )
            self.item_embedding = CollaborativeItemEmbedding(
                self.item_embedding,
                dataset.teacher_item_embedding,
                weight=config["ed_weight"],
                projector=config["ed_projector"],
                offset=config["ed_offset"],
                scope=config["ed_scope"],
            )
            if hasattr(type(self), "_init_weights"):  # RecBole's CORE and SRGNN have none: torch's default init
                self.item_embedding.projector.apply(self._init_weights)
        self._encoder_memo = None
        self._loss_inputs = None  # within a training step: the score tensors the model's loss module read
        self._loss_reads_full_scores = None  # learned at the first training step
        if isinstance(getattr(self, "loss_fct", None), nn.Module):
            self.loss_fct.register_forward_hook(self._record_loss_input)

    def forward(self, *inputs):
        with self._embedding_scope("input_lookups"):
            return self._encode(*inputs)

    def _embedding_scope(self, name):
        """A scope of the collaborative item embedding (nothing when embedding distillation is off)."""
        layer = getattr(self, "item_embedding", None)  # some RecBole models (FPMC, RepeatNet) have none
        return getattr(layer, name)() if isinstance(layer, CollaborativeItemEmbedding) else nullcontext()

    @contextmanager
    def _one_step(self):
        """One training step: the encoder pass and the fused item table are computed once and shared."""
        self._encoder_memo = ((), None)
        self._loss_inputs = []
        try:
            with self._embedding_scope("one_step"):
                yield
        finally:
            self._encoder_memo = None
            self._loss_inputs = None

    def _record_loss_input(self, module, args, output):
        if self._loss_inputs is not None and args:
            self._loss_inputs.append(args[0])

    def _encode(self, *inputs):
        # Inside calculate_loss, a second call on the very same input tensors (the base loss, then
        # full_sort_predict for the distillation term) reuses the first pass and its graph.
        memo = self._encoder_memo
        if memo is not None and len(memo[0]) == len(inputs) and all(a is b for a, b in zip(memo[0], inputs)):
            return memo[1]
        output = super().forward(*inputs)
        if memo is not None:
            self._encoder_memo = (inputs, output)
        return output

    def _loss_and_scores(self, interaction):
        """The model's own loss and the next-item scores of the training prefix that ``L_d`` reads (inside
        :meth:`_one_step`): ``full_sort_predict``'s scores, from the loss's encoder pass when their inputs agree,
        and the very tensor the loss module read when that is equal to them (found out at the first step)."""
        rec_loss = super().calculate_loss(interaction)
        read = self._loss_inputs
        if self._loss_reads_full_scores is None:
            scores = self.full_sort_predict(interaction)
            same = len(read) == 1 and read[0].shape == scores.shape and torch.equal(read[0], scores)
            self._loss_reads_full_scores = same
            return rec_loss, scores
        return rec_loss, read[0] if self._loss_reads_full_scores else self.full_sort_predict(interaction)

    def calculate_loss(self, interaction):
        if not self.rd_weight:
            with self._one_step():
                rec_loss = super().calculate_loss(interaction)
            return rec_loss, torch.zeros_like(rec_loss)
        with self._one_step():
            rec_loss, scores = self._loss_and_scores(interaction)
        return rec_loss, self.rd_weight * self._ranking_distillation(scores, interaction)

    def _ranking_weights(self, scores, interaction):
        """The importance weights ``w_sk`` (eq. 6-10) of the batch's teacher candidates."""
        return ranking_distillation_weights(
            scores,
            interaction[TEACHER_TOPK],
            interaction[TEACHER_SCORE],
            gammas=self.rd_gammas,
            beta=self.rd_beta,
            score_kind=self.teacher_score_kind,
            confidence=self.rd_confidence,
            teacher_target_scores=interaction[TEACHER_TARGET_SCORE],
        )

    def _ranking_distillation(self, scores, interaction, weights=None):
        """``L_d`` (eq. 5) of the batch, on the student's next-item ``scores`` of its training prefixes."""
        negative_scores = None
        if self.rd_negative:
            history = interaction[self.ITEM_SEQ] if self.rd_negative_exclude_history else None
            negatives = self._sample_negatives(interaction[self.POS_ITEM_ID], history)
            negative_scores = scores.gather(1, negatives[:, None])[:, 0]
        return ranking_distillation_loss(
            scores,
            interaction[TEACHER_TOPK],
            interaction[TEACHER_SCORE],
            negative_scores=negative_scores,
            negative=self.rd_negative,
            weights=self._ranking_weights(scores, interaction) if weights is None else weights,
            likelihood=self.rd_likelihood,
        )

    def _sample_negatives(self, targets, history=None, max_draws=100):
        """One uniform item per row other than padding and the row's target (official code: 1 negative);
        with ``history`` (``[B, L]``, the rows' item sequences) also outside the row's history, as the
        official code draws it, by redrawing the rows that hit it (at most ``max_draws`` times)."""
        negatives = torch.randint(1, self.n_items - 1, targets.shape, device=targets.device)
        negatives = negatives + (negatives >= targets).long()
        if history is None:
            return negatives
        for _ in range(max_draws):
            hit = (negatives[:, None] == history).any(dim=1)
            if not hit.any():
                break
            redrawn = torch.randint(1, self.n_items - 1, (int(hit.sum()),), device=targets.device)
            negatives[hit] = redrawn + (redrawn >= targets[hit]).long()
        return negatives


_STUDENTS = {}


def student_class(model_name):
    """``DLLM2Rec<model_name>``: the :class:`DLLM2Rec` mixin over RecBole's sequential model ``model_name``,
    made once and kept, so that checkpoints pickle it by name (``recbole_distill.model.dllm2rec.DLLM2RecNARM``)."""
    if model_name not in _STUDENTS:
        module = f"recbole.model.sequential_recommender.{model_name.lower()}"
        base = getattr(importlib.import_module(module), model_name, None) if importlib.util.find_spec(module) else None
        if not (isinstance(base, type) and issubclass(base, SequentialRecommender)):
            raise ConfigError("model", f"DLLM2Rec{model_name}", "DLLM2Rec<Model> over one of RecBole's sequential models")
        name = f"DLLM2Rec{model_name}"
        doc = f"RecBole's {model_name} distilled from a teacher with DLLM2Rec (made on demand from the mixin)."
        _STUDENTS[model_name] = type(name, (DLLM2Rec, base), {"__module__": __name__, "__qualname__": name, "__doc__": doc})
    return _STUDENTS[model_name]


def __getattr__(name):
    # pickle looks DLLM2Rec<Model> classes up here by name (PEP 562)
    if name.startswith("DLLM2Rec") and len(name) > len("DLLM2Rec"):
        try:
            return student_class(name[len("DLLM2Rec") :])
        except ConfigError:
            pass
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
