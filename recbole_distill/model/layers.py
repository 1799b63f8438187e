"""Layers written once and shared by every student."""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

PROJECTORS = ("linear", "mlp")
SCOPES = ("input", "input_output")


def build_projector(in_dim, out_dim, kind):
    """``g`` of DLLM2Rec eq. 12: a linear map (official code) or a 2-layer MLP (the paper's suggestion)."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, 4 * out_dim), nn.GELU(), nn.Linear(4 * out_dim, out_dim))
    raise ValueError(f"projector must be one of {PROJECTORS}, got {kind!r}")


class CollaborativeItemEmbedding(nn.Module):
    r"""Collaborative embedding distillation (DLLM2Rec, Cui et al. 2024, eq. 12-13).

    ``e_i = b_i + w_ed * g(z_i)``: the student's own ID embedding ``b_i`` (the "offset") plus a learned
    projection ``g`` of the teacher's embedding ``z_i`` of the item. It stands in for the
    ``nn.Embedding`` a RecBole model keeps as ``item_embedding``: calling it looks items up and
    ``weight`` is the whole table, so RecBole's ``forward``, losses and ``full_sort_predict`` use it
    unchanged.

    ``scope`` decides where ``e`` is used. ``"input_output"``: everywhere, including the tied output
    scores. ``"input"`` (as in the official code): only for the history the encoder reads, inside
    :meth:`input_lookups`; output scores keep the ID embedding ``b``. ``offset=False`` drops ``b`` from
    ``e`` (the paper's "w/o offset" ablation).

    The fused table is computed once per training step inside :meth:`one_step` (the input lookups, the
    output scores and the distillation scores then share it), and without gradient (evaluation,
    inference) once until a parameter changes, so the student then costs what the plain model costs.

    Args:
        id_embedding (nn.Embedding): the RecBole model's own item embedding, ``b``.
        teacher_embedding (torch.Tensor): ``[n, d_t]`` teacher item embeddings in RecBole item-id order;
            rows past ``n`` (e.g. BERT4Rec's mask token) and row 0 (padding) are treated as zeros.
        weight (float): ``w_ed``.
        projector (str): ``linear`` or ``mlp``.
        offset (bool): keep ``b`` in ``e``.
        scope (str): ``input`` or ``input_output``.
    """

    def __init__(self, id_embedding, teacher_embedding, weight, projector="linear", offset=True, scope="input_output"):
        super().__init__()
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        n_rows, dim = id_embedding.weight.shape
        table = torch.zeros(n_rows, teacher_embedding.shape[1])
        table[1 : len(teacher_embedding)] = teacher_embedding[1:n_rows].float()
        self.register_buffer("teacher_embedding", table, persistent=False)
        self.id_embedding = id_embedding if offset or scope == "input" else None
        self.projector = build_projector(table.shape[1], dim, projector)
        self.ed_weight = weight
        self.offset = offset
        self.scope = scope
        self._inputs = False
        self._step_table = None
        self._cache_key, self._cache = None, None

    @contextmanager
    def input_lookups(self):
        """Within this block, lookups are of encoder inputs (they matter for ``scope="input"``)."""
        self._inputs = True
        try:
            yield
        finally:
            self._inputs = False

    @contextmanager
    def one_step(self):
        """Within this block (one training step, before the optimiser moves), the fused table with its
        graph is computed at most once and shared by every lookup."""
        self._step_table = False
        try:
            yield
        finally:
            self._step_table = None

    def _fuse(self, item_ids):
        """``e`` for ``item_ids`` (1-d), computed from the parameters."""
        fused = self.ed_weight * self.projector(self.teacher_embedding[item_ids])
        if self.offset:
            fused = fused + self.id_embedding(item_ids)
        return fused

    def fused_weight(self):
        """The whole table ``e``, ``[n_items, dim]``."""
        if torch.is_grad_enabled():
            if self._step_table is None:
                return self._fuse(self._all_items())
            if self._step_table is False:
                self._step_table = self._fuse(self._all_items())
            return self._step_table
        key = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if key != self._cache_key:
            self._cache, self._cache_key = self._fuse(self._all_items()), key
        return self._cache

    def _all_items(self):
        return torch.arange(len(self.teacher_embedding), device=self.teacher_embedding.device)

    @property
    def weight(self):
        """The output table: ``e`` for ``scope="input_output"``, else the ID embedding ``b``."""
        return self.fused_weight() if self.scope == "input_output" else self.id_embedding.weight

    def forward(self, item_ids):
        if not (self._inputs or self.scope == "input_output"):
            return self.id_embedding(item_ids)
        if not torch.is_grad_enabled() or (self._step_table is not None and self.scope == "input_output"):
            return F.embedding(item_ids, self.fused_weight())  # the table the output scores use anyway
        # Project only the items this batch uses: cheap for large catalogues and teacher dimensions.
        unique, inverse = torch.unique(item_ids, return_inverse=True)
        return self._fuse(unique)[inverse]
