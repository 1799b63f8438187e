"""RecBole's SequentialDataset with stable sample keys, and with a teacher joined onto its samples."""

import hashlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from recbole.data.dataset import SequentialDataset
from recbole.utils import FeatureSource, FeatureType, set_color

from recbole_distill.paths import DATASET_DIR
from recbole_distill.data.alignment import MIN_CONSISTENCY, score_consistency, target_hits
from recbole_distill.data.artifacts import SPLITS, TeacherArtifacts
from recbole_distill.errors import ConfigError, DatasetError, RecBoleDistillError, TeacherArtifactError
from recbole_distill.model.abstract_recommender import is_plugin_model

TARGET_POS = "target_pos"
TEACHER_TOPK = "teacher_topk"
TEACHER_SCORE = "teacher_score"
TEACHER_TARGET_SCORE = "teacher_target_score"
# the dataset attribute each teacher part becomes, when a model reads it at inference
TABLE_PARTS = {"teacher_item_embedding": "embedding", "item_text_embedding": "item_text"}

# Config keys that decide which samples exist and how they are split; a teacher records them so that
# a mismatch can be explained, not only detected.
SAMPLE_SHAPING_KEYS = (
    "dataset",
    "load_col",
    "unload_col",
    "rm_dup_inter",
    "val_interval",
    "filter_inter_by_user_or_item",
    "user_inter_num_interval",
    "item_inter_num_interval",
    "eval_args",
)


def _not_in(size, indices):
    """The numbers in ``[0, size)`` that ``indices`` does not hold, in linear time (``np.setdiff1d`` sorts)."""
    seen = np.zeros(size, dtype=bool)
    seen[indices] = True
    return np.flatnonzero(~seen)


@contextmanager
def dataset_errors(config):
    """RecBole's errors for a data set it cannot find, or whose filters leave nothing, as one-line errors."""
    try:
        yield
    except RecBoleDistillError:
        raise
    except ValueError as e:
        if "a known dataset name" not in str(e) and "feat is empty" not in str(e):
            raise
        raise DatasetError(
            f"dataset '{config['dataset']}': {e} Check --dataset and data_path ({config['data_path']}), and that the "
            "filters (user_inter_num_interval, item_inter_num_interval, ...) leave interactions."
        ) from None


def default_teacher_path(dataset_name):
    return DATASET_DIR / dataset_name / "teacher"


def resolve_teacher_path(config):
    """``teacher_path`` from the config, or the teacher shipped for the dataset."""
    return Path(config["teacher_path"]) if config["teacher_path"] else default_teacher_path(config["dataset"])


def item_text_folder(config):
    """The folder of item-text embeddings ``item_text_embedding_path`` names (``~``: ``dataset/<dataset>/item_text``)."""
    path = Path(config["item_text_embedding_path"] or DATASET_DIR / config["dataset"] / "item_text")
    if not (path / "teacher.yaml").is_file():
        raise TeacherArtifactError(
            f"no item-text embeddings at '{path}' (item_text_embedding_path). Build them with 'python -m "
            f"recbole_distill.teacher.text_embedding --dataset={config['dataset']} --teacher_path={path}', or "
            "set item_text_embedding_path to such a folder (item_text_weight: 0 trains without them)."
        )
    return TeacherArtifacts(path)


class KeyedSequentialDataset(SequentialDataset):
    r""":class:`~recbole.data.dataset.SequentialDataset` whose augmented samples carry a stable key.

    RecBole turns every interaction but a user's first into a sample (history prefix, next item); the
    pair (user, ``item_length``) is not unique once histories exceed ``MAX_ITEM_LIST_LENGTH``. This
    dataset adds ``target_pos``: the 0-based position of the target item in the user's time-ordered
    history, so (user, ``target_pos``) names a sample whatever the length cap, split or shuffle.
    """

    def __init__(self, config):
        with dataset_errors(config):
            super().__init__(config)

    def data_augmentation(self):
        super().data_augmentation()
        if not len(self.inter_feat):
            raise DatasetError(
                f"dataset '{self.dataset_name}' has no training samples: no user has two interactions, and a sequential "
                "sample is a history with its next item. Check the data and its filters."
            )
        # RecBole leaves the samples in (user, time) order here: a sample's position in its user's run
        # of samples, plus one for the user's first interaction, is its target's position.
        uid = self.inter_feat[self.uid_field].numpy()
        starts = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]])
        run_start = np.repeat(starts, np.diff(np.r_[starts, len(uid)]))
        self.inter_feat[TARGET_POS] = torch.from_numpy(np.arange(len(uid)) - run_start + 1)
        self.set_field_property(TARGET_POS, FeatureType.TOKEN, FeatureSource.INTERACTION, 1)
        # Every user's whole time-ordered history (the first item, then every sample's target), for
        # history masks over more than the MAX_ITEM_LIST_LENGTH items a sample carries.
        first_items = self.inter_feat[self.item_id_list_field][starts, 0].numpy()
        self.user_items = np.insert(self.inter_feat[self.iid_field].numpy(), starts, first_items)
        self.user_offsets = np.zeros(self.user_num + 1, dtype=np.int64)
        self.user_offsets[uid[starts] + 1] = np.diff(np.r_[starts, len(uid)]) + 1
        self.user_offsets = np.cumsum(self.user_offsets)

    def history_index(self, users, positions):
        """``(rows, items)``: for row ``r``, every item user ``users[r]`` had before ``positions[r]``.

        The rows' own histories over the whole data, not only the last ``MAX_ITEM_LIST_LENGTH`` items,
        in the form of RecBole's ``history_index`` (``scores[rows, items] = -inf`` masks them).
        """
        users, positions = np.asarray(users), np.asarray(positions)
        starts = self.user_offsets[users]
        rows = np.repeat(np.arange(len(users)), positions)
        within = np.arange(len(rows)) - np.repeat(np.cumsum(positions) - positions, positions)
        return torch.from_numpy(rows), torch.from_numpy(self.user_items[np.repeat(starts, positions) + within])

    def has_repeats(self):
        """Whether some user interacted with some item more than once (computed once per dataset: every
        evaluation asks, through ``eval_exclude_history``)."""
        cached = getattr(self, "_has_repeats", None)
        if cached is None or cached[0] is not self.user_items:  # recomputed for a replaced history table
            owner = np.repeat(np.arange(self.user_num), np.diff(self.user_offsets))
            pairs = owner * self.item_num + self.user_items
            self._has_repeats = cached = (self.user_items, len(np.unique(pairs)) < len(pairs))
        return cached[1]

    def training_windows(self, dataset, stride=None):
        """The samples of ``dataset`` (a training split) that end a window, one every ``stride`` targets.

        Counting back from each user's last training target, every ``stride``-th sample is kept (default:
        ``MAX_ITEM_LIST_LENGTH``). Its history and target are a window of the user's sequence; at the default
        stride the windows tile it, so a model that learns every position of a window (``train_windows``)
        sees each target once per epoch.
        """
        feat = dataset.inter_feat
        users, positions = feat[self.uid_field].numpy(), feat[TARGET_POS].numpy()
        last = np.zeros(self.user_num, dtype=np.int64)
        np.maximum.at(last, users, positions)
        keep = (last[users] - positions) % (stride or self.config["MAX_ITEM_LIST_LENGTH"]) == 0
        return dataset.copy(feat[torch.from_numpy(np.flatnonzero(keep))])

    def build(self):
        if self.config["benchmark_filename"] is not None:
            raise ConfigError(
                "benchmark_filename",
                self.config["benchmark_filename"],
                "None: teacher samples are keyed by RecBole's own augmentation of the .inter file",
            )
        datasets = super().build()
        self.attach(datasets)
        if self.config["train_windows"]:
            datasets[0] = self.training_windows(datasets[0])
        return datasets

    def attach(self, datasets):
        """Add to the ``(train, valid, test)`` splits before training windows are cut (see subclasses)."""

    def sample_table(self, datasets):
        """User id, target position, target item id and split (0/1/2) of every sample in ``datasets``."""
        columns = {"user": [], "pos": [], "item": [], "split": []}
        for split, dataset in enumerate(datasets):
            feat = dataset.inter_feat
            columns["user"].append(feat[self.uid_field].numpy())
            columns["pos"].append(feat[TARGET_POS].numpy())
            columns["item"].append(feat[self.iid_field].numpy())
            columns["split"].append(np.full(len(feat), split))
        return {name: np.concatenate(parts).astype(np.int64) for name, parts in columns.items()}

    def fingerprint(self, table):
        """A hash of which samples exist, what their targets are and how they are split.

        It is computed on tokens, not on RecBole's internal ids, so it only changes when the data, its
        filters or the split change.
        """
        users, items = self.field2id_token[self.uid_field], self.field2id_token[self.iid_field]
        user_rank, item_rank = np.argsort(np.argsort(users)), np.argsort(np.argsort(items))
        order = np.lexsort((table["pos"], user_rank[table["user"]]))
        digest = hashlib.sha256()
        for tokens in (np.sort(users), np.sort(items)):
            digest.update("\n".join(tokens).encode("utf-8"))
        for column in (user_rank[table["user"]], table["pos"], item_rank[table["item"]], table["split"]):
            digest.update(np.ascontiguousarray(column[order]).tobytes())
        return digest.hexdigest()[:16]

    def shaping_config(self):
        """The config values that decide the sample set."""
        return {key: self.config[key] for key in SAMPLE_SHAPING_KEYS}

    def teacher_info(self, datasets, table=None):
        """What a teacher built on ``datasets`` (train, valid, test; ``table``: their :meth:`sample_table`)
        records about them in teacher.yaml."""
        table = self.sample_table(datasets) if table is None else table
        return {
            "dataset": self.dataset_name,
            "samples": {name: int((table["split"] == s).sum()) for s, name in enumerate(SPLITS)},
            "dataset_config": self.shaping_config(),
            "fingerprint": self.fingerprint(table),
        }


class TeacherSequentialDataset(KeyedSequentialDataset):
    r"""A :class:`KeyedSequentialDataset` that joins a teacher's artifacts onto RecBole's samples.

    Per sample it adds ``teacher_topk`` (``[K]`` RecBole item ids, 0 = no candidate),
    ``teacher_score`` (``[K]``) and ``teacher_target_score``, matched by (user, ``target_pos``); every
    match must agree on the target item and the split, and every training sample must have a row.
    The teacher's item embeddings are reordered into RecBole's item ids as ``teacher_item_embedding``
    (a teacher may embed more items than the dataset keeps; every item it keeps needs a row).
    Item-text embeddings (``item_text_embedding_path``, a folder with item embeddings only, written by
    ``recbole_distill.teacher.text_embedding``) are aligned the same way as ``item_text_embedding``.
    Which parts are loaded is asked of the model class (:meth:`PluginRecommender.teacher_parts`; none
    for RecBole's models). Anything that does not line up stops the run here, before any training.

    ``saved_tables`` (the tables a saved model carries, :attr:`PluginRecommender.saved_teacher_tables`) builds
    the data for that model's inference: those tables are taken as given and no training rankings are joined,
    so no teacher folder is read for them.
    """

    def __init__(self, config, saved_tables=None):
        model_class = config.model_class
        self.teacher_parts = model_class.teacher_parts(config) if is_plugin_model(model_class) else set()
        self.saved_tables = dict(saved_tables or {})
        if saved_tables is not None:
            self.teacher_parts -= {"ranking"} | {TABLE_PARTS[name] for name in self.saved_tables}
        super().__init__(config)
        needs_teacher = self.teacher_parts & {"ranking", "eval_ranking", "embedding"}
        self.teacher = TeacherArtifacts(resolve_teacher_path(config)) if needs_teacher else None
        self.item_text = item_text_folder(config) if "item_text" in self.teacher_parts else None
        self.teacher_score_kind = None
        self.teacher_item_embedding = None
        self.item_text_embedding = None

    def __str__(self):
        teacher = self.teacher.describe() if self.teacher else "none (no distillation part enabled)"
        text = "\n" + set_color("Item text", "blue") + f": {self.item_text.describe()}" if self.item_text else ""
        return super().__str__() + "\n" + set_color("Teacher", "blue") + f": {teacher}" + text

    def attach(self, datasets):
        if "ranking" in self.teacher_parts:
            self._join_rankings(datasets)
            self.teacher_score_kind = self.teacher.meta["ranking"]["score_kind"]
        if "embedding" in self.teacher_parts:
            self.teacher_item_embedding = self._aligned_item_embeddings(self.teacher)
        if "item_text" in self.teacher_parts:
            self.item_text_embedding = self._aligned_item_embeddings(self.item_text)
        for name, table in self.saved_tables.items():
            setattr(self, name, table)
        for dataset in datasets:  # the splits were copied before the teacher was attached
            dataset.teacher_score_kind = self.teacher_score_kind
            dataset.teacher_item_embedding = self.teacher_item_embedding
            dataset.item_text_embedding = self.item_text_embedding

    # -- tokens ----------------------------------------------------------------------------------------
    def _ids(self, field, tokens):
        """RecBole ids of ``tokens`` (0, RecBole's padding id, for a token the dataset does not have)."""
        token2id = self.field2token_id[field]
        return np.array([token2id.get(token, 0) for token in tokens], dtype=np.int64)

    def _known_ids(self, field, tokens, file):
        ids = self._ids(field, tokens)
        unknown = np.flatnonzero(ids == 0)
        if len(unknown):
            raise TeacherArtifactError(
                f"{len(unknown)} token(s) in the teacher's {file} are not {field}s of dataset "
                f"'{self.dataset_name}' (first: '{tokens[unknown[0]]}'). The teacher was built for other data "
                "or other filters; rebuild it with this run's dataset config."
            )
        return ids

    def _sample_name(self, table, i):
        return f"user '{self.id2token(self.uid_field, table['user'][i])}', target position {table['pos'][i]}"

    # -- embeddings ------------------------------------------------------------------------------------
    def _aligned_item_embeddings(self, folder):
        """``folder``'s item embeddings in RecBole item-id order; items the dataset does not have are skipped."""
        embeddings = folder.item_embeddings()
        ids = self._ids(self.iid_field, folder.items)
        known = np.flatnonzero(ids > 0)
        table = torch.zeros(self.item_num, embeddings.shape[1])
        for start in range(0, len(known), 1 << 16):  # chunks: never a second copy of a large table in memory
            rows = known[start : start + (1 << 16)]
            table[torch.from_numpy(ids[rows])] = torch.from_numpy(np.asarray(embeddings[rows], dtype=np.float32))
        missing = _not_in(self.item_num, ids[known])[1:]  # id 0 is RecBole's padding
        if len(missing):
            unknown = np.flatnonzero(ids == 0)
            hint = (
                f"; the teacher lists {len(unknown)} item(s) this dataset does not have (first: "
                f"'{folder.items[unknown[0]]}'), so it was built for other data"
                if len(unknown)
                else ""
            )
            raise TeacherArtifactError(
                f"{len(missing)} item(s) of dataset '{self.dataset_name}' have no teacher embedding (first: "
                f"'{self.id2token(self.iid_field, missing[0])}'){hint}. Rebuild the embeddings for this dataset."
            )
        return table

    # -- rankings --------------------------------------------------------------------------------------
    def _join_rankings(self, datasets):
        users, samples, topk, scores, target_scores = self.teacher.ranking()
        stored_k = self.teacher.meta["ranking"]["k"]
        k = self.config["teacher_k"]
        if k > stored_k:
            raise ConfigError("teacher_k", k, f"at most {stored_k}, the K the teacher at {self.teacher.path} stores")
        table = self.sample_table(datasets)
        fingerprint = self.fingerprint(table)
        if self.teacher.meta.get("fingerprint") != fingerprint:
            raise TeacherArtifactError(self._fingerprint_message(fingerprint, table))

        rows = self._match_rows(table, users, samples)
        item_ids = np.r_[self._known_ids(self.iid_field, self.teacher.items, "items.txt"), 0]  # index -1 -> 0
        self._check_agreement(table, rows, samples, item_ids)
        if self.config["teacher_check_alignment"]:
            self._check_alignment(samples, topk, scores, target_scores)

        start = 0
        for dataset in datasets:
            split_rows = rows[start : start + len(dataset.inter_feat)]
            start += len(dataset.inter_feat)
            self._attach(dataset, split_rows, topk, scores, target_scores, item_ids, k)
        counts = ", ".join(
            f"{name} {int((rows[table['split'] == s] >= 0).sum())}/{int((table['split'] == s).sum())}"
            for s, name in enumerate(SPLITS)
        )
        self.logger.info(set_color("Teacher rankings joined", "blue") + f": {counts} samples, K={k}")

    def _match_rows(self, table, users, samples):
        """For each sample of ``table``, the teacher row with its (user, target position), or -1."""
        user_ids = self._known_ids(self.uid_field, users, "users.txt")
        stride = int(max(table["pos"].max(), samples[:, 1].max())) + 1
        teacher_keys = user_ids[samples[:, 0]] * stride + samples[:, 1]
        order = np.argsort(teacher_keys, kind="stable")
        sorted_keys = teacher_keys[order]
        duplicate = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
        if len(duplicate):
            row = order[duplicate[0]]
            raise TeacherArtifactError(
                f"the teacher has {len(duplicate)} duplicate sample key(s) (first: user '{users[samples[row, 0]]}', "
                f"target position {samples[row, 1]}); each (user, target position) must appear once. Rebuild it."
            )
        sample_keys = table["user"] * stride + table["pos"]
        where = np.minimum(np.searchsorted(sorted_keys, sample_keys), len(sorted_keys) - 1)
        rows = np.where(sorted_keys[where] == sample_keys, order[where], -1)

        required = table["split"] >= 0 if "eval_ranking" in self.teacher_parts else table["split"] == 0
        missing = np.flatnonzero((rows < 0) & required)
        if len(missing):
            split = table["split"][missing[0]]
            count = int((table["split"][missing] == split).sum())
            raise TeacherArtifactError(
                f"the teacher has no row for {count} {'training' if split == 0 else SPLITS[split]} sample(s) (first: "
                f"{self._sample_name(table, missing[0])}). It was built on other data, "
                "without valid / test rankings, or did not finish; rebuild or resume the teacher."
            )
        unused = _not_in(len(samples), rows[rows >= 0])
        if len(unused):
            row = unused[0]
            raise TeacherArtifactError(
                f"the teacher has {len(unused)} row(s) for samples dataset '{self.dataset_name}' does not have "
                f"(first: user '{users[samples[row, 0]]}', target position {samples[row, 1]}); it was built on "
                "other data. Rebuild it with this run's dataset config."
            )
        return rows

    def _check_agreement(self, table, rows, samples, item_ids):
        """Every matched row must agree with RecBole on the target item and on the split."""
        matched = np.flatnonzero(rows >= 0)
        checks = (
            ("target item", item_ids[samples[rows[matched], 2]], table["item"][matched]),
            ("split", samples[rows[matched], 3], table["split"][matched]),
        )
        for what, theirs, ours in checks:
            wrong = np.flatnonzero(theirs != ours)
            if len(wrong):
                first = wrong[0]
                raise TeacherArtifactError(
                    f"the teacher disagrees with dataset '{self.dataset_name}' on the {what} of {len(wrong)} "
                    f"sample(s) (first: {self._sample_name(table, matched[first])}: teacher "
                    f"{self._show(what, theirs[first])}, dataset {self._show(what, ours[first])}). Its rows are "
                    "misaligned with this data; rebuild the teacher with this run's dataset config."
                )

    def _check_alignment(self, samples, topk, scores, target_scores):
        """The rankings must belong to their rows (see :mod:`recbole_distill.data.alignment`)."""
        kind = self.teacher.meta["ranking"]["score_kind"]
        consistency = score_consistency(topk, scores, target_scores, samples[:, 2], kind)
        own, permuted = target_hits(topk, samples[:, 2])
        statistics = (
            f"score consistency {consistency:.1%} of rows (needed: {MIN_CONSISTENCY:.0%}); top-K names the row's own "
            f"next item in {own:.2%} of rows, a random row's in {permuted:.2%}"
        )
        self.logger.info(set_color("Teacher alignment", "blue") + f": {statistics}")
        if consistency < MIN_CONSISTENCY or own <= permuted:
            raise TeacherArtifactError(
                f"the rankings in {self.teacher.path} do not belong to their rows: {statistics}. topk.npy, scores.npy "
                "and target_scores.npy must be row by row in samples.npy's order (was one of them written from "
                "another ordering, shifted or cut?); rebuild the teacher. If the teacher never ranks the true item, "
                "check it, then set teacher_check_alignment: False."
            )

    def _show(self, what, value):
        return f"'{self.id2token(self.iid_field, value)}'" if what == "target item" else SPLITS[value]

    def _fingerprint_message(self, fingerprint, table):
        meta = self.teacher.meta
        counts = {name: int((table["split"] == s).sum()) for s, name in enumerate(SPLITS)}
        built_with = meta.get("dataset_config") or {}
        ours = self.shaping_config()
        differing = [key for key in SAMPLE_SHAPING_KEYS if key in built_with and built_with[key] != ours[key]]
        reason = (
            "these settings differ: " + "; ".join(f"{k} {built_with[k]!r} there, {ours[k]!r} here" for k in differing)
            if differing
            else "the data files themselves differ"
        )
        return (
            f"the teacher at {self.teacher.path} was built for other samples than this run's: it was built "
            f"for dataset {meta.get('dataset')!r} with samples {meta.get('samples')} (fingerprint "
            f"{meta.get('fingerprint')}), this run has dataset '{self.dataset_name}' with samples {counts} "
            f"(fingerprint {fingerprint}); {reason}. Rebuild the teacher with this run's config, or run "
            "with the settings it was built with."
        )

    def _attach(self, dataset, rows, topk, scores, target_scores, item_ids, k):
        has_row = rows >= 0
        safe_rows = np.where(has_row, rows, 0)
        dataset_topk = item_ids[topk[safe_rows, :k]]  # indexes with the stored int32 (-1 -> RecBole's 0)
        dataset_topk[~has_row] = 0
        dataset_scores = np.asarray(scores[safe_rows, :k], dtype=np.float32)
        dataset_scores[dataset_topk == 0] = 0.0
        dataset_target = np.where(has_row, np.asarray(target_scores[safe_rows], dtype=np.float32), np.nan)
        feat = dataset.inter_feat
        feat[TEACHER_TOPK] = torch.from_numpy(dataset_topk)
        feat[TEACHER_SCORE] = torch.from_numpy(dataset_scores)
        feat[TEACHER_TARGET_SCORE] = torch.from_numpy(dataset_target)
        dataset.set_field_property(TEACHER_TOPK, FeatureType.TOKEN_SEQ, FeatureSource.INTERACTION, k)
        dataset.set_field_property(TEACHER_SCORE, FeatureType.FLOAT_SEQ, FeatureSource.INTERACTION, k)
        dataset.set_field_property(TEACHER_TARGET_SCORE, FeatureType.FLOAT, FeatureSource.INTERACTION, 1)
