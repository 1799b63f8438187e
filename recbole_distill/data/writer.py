"""The one writer of teacher folders: every builder hands it what its teacher knows, in RecBole's ids."""

from pathlib import Path

import numpy as np

from recbole_distill.data.artifacts import write_item_embeddings, write_ranking


class TeacherWriter:
    r"""Writes the teacher folder ``path`` for the samples of ``datasets`` (the train, valid and test splits of
    the :class:`~recbole_distill.data.dataset.KeyedSequentialDataset` ``dataset``).

    The folder's token lists, sample table (user, target position, target item, split) and fingerprint come
    from the dataset, so a builder gives only its teacher's rankings and embeddings, in RecBole's ids, for the
    rows of :attr:`table` (every sample: train, then valid, then test). Each file is written atomically, once
    (:mod:`recbole_distill.data.artifacts`). ``items`` (default: the dataset's items) lists the teacher's own
    item tokens when it knows items the dataset does not keep.
    """

    def __init__(self, path, dataset, datasets, items=None):
        self.path = Path(path)
        self.table = dataset.sample_table(datasets)
        self.dataset_info = dataset.teacher_info(datasets, self.table)
        self.users = dataset.field2id_token[dataset.uid_field][1:]  # [PAD] (id 0) is not a token of the folder
        tokens = dataset.field2id_token[dataset.iid_field]
        if items is None:
            self.items = tokens[1:]
            self._index = np.arange(len(tokens)) - 1  # RecBole id -> row of items.txt; 0 (padding) -> -1, none
        else:
            self.items = np.asarray(items, dtype=object)
            row = {token: i for i, token in enumerate(self.items)}
            self._index = np.array([-1] + [row.get(token, -1) for token in tokens[1:]])

    def __len__(self):
        return len(self.table["user"])

    def write_ranking(self, topk, scores, target_scores, info, rows=None):
        """The teacher's top-K of the samples ``rows`` of :attr:`table` (default: every sample).

        ``topk`` ``[N, K]`` RecBole item ids, best first, 0 where the teacher has no candidate (its score is
        then stored as 0); ``scores`` their scores; ``target_scores`` ``[N]`` the score of each sample's true
        item; ``info`` (``score_kind``, ``teacher``, ``command``, ...) becomes teacher.yaml's ``ranking``.
        """
        table = {name: column if rows is None else column[rows] for name, column in self.table.items()}
        topk = np.asarray(topk)
        samples = np.stack([table["user"] - 1, table["pos"], self._index[table["item"]], table["split"]], axis=1)
        write_ranking(
            self.path, self.dataset_info, items=self.items, users=self.users, samples=samples,
            topk=self._index[topk], scores=np.where(topk > 0, scores, 0.0), target_scores=target_scores, info=info,
        )

    def write_item_embeddings(self, embeddings, info):
        """One embedding row per item of :attr:`items` (RecBole ids 1, 2, ...; no padding row); ``info``
        (``source``, ``command``, ...) becomes teacher.yaml's ``embedding``."""
        write_item_embeddings(self.path, self.dataset_info, items=self.items, embeddings=embeddings, info=info)
