r"""Teacher artifacts on disk: the format, a writer, a reader and a validator.

A teacher folder holds what a teacher knows about a dataset, keyed so that loading can *check* the
alignment with RecBole's samples instead of trusting it::

    teacher.yaml          format version, dataset, fingerprint, and one section per part:
                          ``ranking`` (k, score_kind, how it was built) and ``embedding`` (dim, source)
    users.txt, items.txt  the teacher's user and item tokens, one per line; arrays index into them
    samples.npy           int32 [N, 4]: user index, target position, target item index, split
                          (target position = 0-based position of the target in the user's time-ordered
                          history; split 0 / 1 / 2 = train / valid / test)
    topk.npy              int32 [N, K]: the teacher's top-K item indices per sample, best first; -1 = none
    scores.npy            float32 [N, K]: the teacher's score for each of them (see ``score_kind``)
    target_scores.npy     float32 [N]: the teacher's score for the sample's true next item
    item_embeddings.npy   float32 or float16 [n_items, d]: one row per line of items.txt

``score_kind`` says how to read a score: ``distance`` (smaller is better, e.g. L2 distance of a
generated text to the item), ``logit`` (larger is better) or ``prob`` (a probability).
Arrays load memory-mapped, so a large teacher costs address space rather than memory.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import yaml

from recbole_distill.errors import TeacherArtifactError

FORMAT_VERSION = 1
SCORE_KINDS = ("distance", "logit", "prob")
SPLITS = ("train", "valid", "test")
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, write):
    """Write through a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _save_npy(path, array):
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def _save_tokens(path, tokens):
    atomic_write(path, lambda f: f.write("".join(f"{t}\n" for t in tokens).encode("utf-8")))


def _chunked_rows(function, n_rows, chunk=1 << 16):
    """``function`` of consecutive row slices, concatenated: a check over a memory-mapped array then reads it
    once and holds only one chunk's temporaries, not a copy of the whole array."""
    return np.concatenate([function(slice(start, start + chunk)) for start in range(0, n_rows, chunk)] or [[]])


def _read_tokens(path):
    with open(path, encoding="utf-8") as f:
        return np.array(f.read().splitlines(), dtype=object)


class TeacherArtifacts:
    """A teacher folder, read lazily; :meth:`validate` checks it is well formed on its own terms."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise TeacherArtifactError(
                f"teacher folder '{self.path}' does not exist. Set 'teacher_path' to a folder written by "
                "a teacher builder (see README, 'Building teachers')."
            )
        meta_file = self.path / "teacher.yaml"
        if not meta_file.is_file():
            raise TeacherArtifactError(
                f"'{meta_file}' is missing: '{self.path}' is not a teacher folder. Rebuild it with a "
                "teacher builder (see README, 'Building teachers')."
            )
        with open(meta_file, encoding="utf-8") as f:
            try:
                self.meta = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise TeacherArtifactError(f"'{meta_file}' is not valid YAML: {e}") from e
        sections = {"ranking": ("k",), "embedding": ("dim",)}
        malformed = not isinstance(self.meta, dict) or any(
            name in self.meta
            and not (
                isinstance(self.meta[name], dict)
                and all(isinstance(self.meta[name].get(key), int) and self.meta[name][key] > 0 for key in keys)
            )
            for name, keys in sections.items()
        )
        if malformed:
            raise TeacherArtifactError(
                f"'{meta_file}' is malformed: it must be a mapping whose 'ranking' section (if any) is a mapping "
                "with a whole number k > 0 and whose 'embedding' section (if any) a mapping with a whole number "
                "dim > 0. Rebuild the teacher, or restore the file its builder wrote."
            )
        version = self.meta.get("format_version")
        if version != FORMAT_VERSION:
            raise TeacherArtifactError(
                f"'{meta_file}' has format_version {version!r}; this recbole-distill reads version "
                f"{FORMAT_VERSION}. Rebuild the teacher with this version's builders."
            )
        self.items = self._tokens("items.txt")

    # -- reading -------------------------------------------------------------------------------------
    def _file(self, name):
        file = self.path / name
        if not file.is_file():
            raise TeacherArtifactError(
                f"'{file}' is missing from the teacher folder. Rebuild the teacher (see README)."
            )
        return file

    def _tokens(self, name):
        tokens = _read_tokens(self._file(name))
        if len(set(tokens)) != len(tokens):
            raise TeacherArtifactError(f"'{self.path / name}' lists a token twice; tokens must be unique.")
        return tokens

    def _array(self, name, dtype_kind, ndim):
        file = self._file(name)
        with open(file, "rb") as f:
            if f.read(6) != b"\x93NUMPY":  # np.load would take it for a pickle and suggest loading it unsafely
                raise TeacherArtifactError(f"'{file}' is not a .npy file (no .npy header); it is corrupt. Rebuild the teacher.")
        try:
            array = np.load(file, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise TeacherArtifactError(
                f"'{file}' is not a readable .npy file ({e}); it is truncated or corrupt. Rebuild the teacher."
            ) from e
        if array.dtype.kind not in dtype_kind or array.ndim != ndim:
            raise TeacherArtifactError(
                f"'{file}' holds a {array.ndim}-d {array.dtype} array; expected a {ndim}-d array of "
                f"{'integers' if dtype_kind == 'iu' else 'floats'}."
            )
        return array

    @property
    def has_ranking(self):
        return "ranking" in self.meta

    @property
    def has_embedding(self):
        return "embedding" in self.meta

    def ranking(self):
        """Return ``(users, samples, topk, scores, target_scores)``, checked for shape and values."""
        if not self.has_ranking:
            raise TeacherArtifactError(
                f"'{self.path}' holds no teacher rankings (no 'ranking' section in teacher.yaml). Build "
                "them with 'python -m recbole_distill.teacher.export' (see README)."
            )
        info = self.meta["ranking"]
        users = self._tokens("users.txt")
        samples = self._array("samples.npy", "iu", 2)
        topk = self._array("topk.npy", "iu", 2)
        scores = self._array("scores.npy", "f", 2)
        target_scores = self._array("target_scores.npy", "f", 1)
        n, k = topk.shape
        expected = {"samples.npy": (n, 4), "scores.npy": (n, k), "target_scores.npy": (n,)}
        actual = {"samples.npy": samples.shape, "scores.npy": scores.shape, "target_scores.npy": target_scores.shape}
        wrong = [f"{name} {actual[name]} (expected {shape})" for name, shape in expected.items() if actual[name] != shape]
        if wrong:
            raise TeacherArtifactError(
                f"teacher arrays in '{self.path}' disagree with topk.npy {topk.shape} on their shapes: "
                f"{', '.join(wrong)}. The folder mixes files from different builds; rebuild it."
            )
        if info.get("k") != k:
            raise TeacherArtifactError(
                f"{self.path / 'teacher.yaml'} says k = {info.get('k')!r} but topk.npy has {k} columns; the folder "
                "mixes files from different builds. Rebuild the teacher."
            )
        if info.get("score_kind") not in SCORE_KINDS:
            raise TeacherArtifactError(
                f"teacher.yaml has score_kind {info.get('score_kind')!r}; expected one of {SCORE_KINDS}."
            )
        self._check_indices("samples.npy (user column)", samples[:, 0], len(users))
        self._check_indices("samples.npy (target column)", samples[:, 2], len(self.items))
        self._check_indices("topk.npy", topk, len(self.items), allow_missing=True)
        if not np.isin(samples[:, 3], (0, 1, 2)).all():
            raise TeacherArtifactError(f"samples.npy in '{self.path}' has a split other than 0, 1, 2.")
        if (samples[:, 1] < 0).any():
            raise TeacherArtifactError(f"samples.npy in '{self.path}' has a negative target position.")
        bad = _chunked_rows(lambda rows: (~np.isfinite(scores[rows]) & (topk[rows] >= 0)).sum(axis=1), len(topk))
        if bad.any():
            raise TeacherArtifactError(
                f"scores.npy in '{self.path}' holds {int(bad.sum())} NaN or infinite score(s) for real "
                f"candidates (first at row {np.flatnonzero(bad)[0]}); the teacher produced invalid scores. Rebuild it."
            )
        bad = np.flatnonzero(~np.isfinite(target_scores))
        if len(bad):
            raise TeacherArtifactError(
                f"target_scores.npy in '{self.path}' holds {len(bad)} NaN or infinite value(s) (first at row "
                f"{bad[0]}); the teacher produced invalid scores. Rebuild it."
            )
        return users, samples, topk, scores, target_scores

    def item_embeddings(self):
        """Return the ``[len(items), d]`` item embedding matrix, checked for shape and values."""
        if not self.has_embedding:
            raise TeacherArtifactError(
                f"'{self.path}' holds no teacher item embeddings (no 'embedding' section in teacher.yaml). "
                "Build them with 'python -m recbole_distill.teacher.text_embedding', or set ed_weight: 0 "
                "to train without embedding distillation."
            )
        embeddings = self._array("item_embeddings.npy", "f", 2)
        dim = self.meta["embedding"].get("dim")
        if embeddings.shape != (len(self.items), dim):
            raise TeacherArtifactError(
                f"item_embeddings.npy in '{self.path}' has shape {embeddings.shape}; expected "
                f"({len(self.items)}, {dim}) from items.txt and teacher.yaml's embedding dim. Rebuild it."
            )
        finite = _chunked_rows(lambda rows: np.isfinite(embeddings[rows]).all(axis=1), len(embeddings))
        if not finite.all():
            raise TeacherArtifactError(
                f"item_embeddings.npy in '{self.path}' has NaN or infinite values in {int((~finite).sum())} "
                f"row(s) (first: item '{self.items[np.flatnonzero(~finite)[0]]}'). Rebuild the embeddings."
            )
        return embeddings

    def _check_indices(self, what, array, size, allow_missing=False):
        low = -1 if allow_missing else 0
        if array.size and (array.min() < low or array.max() >= size):
            raise TeacherArtifactError(
                f"{what} in '{self.path}' indexes outside [{low}, {size}); the arrays do not belong to "
                "this folder's token lists. Rebuild the teacher."
            )

    def describe(self):
        parts = []
        if self.has_ranking:
            r = self.meta["ranking"]
            parts.append(f"ranking: {r.get('teacher')} (K={r.get('k')}, {r.get('score_kind')})")
        if self.has_embedding:
            e = self.meta["embedding"]
            parts.append(f"embedding: {e.get('source')} ({e.get('dim')}-d)")
        return f"{self.path} [{'; '.join(parts) or 'empty'}]"


# -- writing -----------------------------------------------------------------------------------------
def _begin(path, dataset_info, items):
    """Open (or create) a teacher folder for the samples ``dataset_info`` describes, listing ``items``.

    ``dataset_info`` (from :meth:`KeyedSequentialDataset.teacher_info`) names the dataset, its sample
    counts, the config that shaped them and their fingerprint; it becomes teacher.yaml's header.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if (path / "teacher.yaml").is_file():
        meta = TeacherArtifacts(path).meta
        if meta.get("fingerprint") != dataset_info["fingerprint"]:
            raise TeacherArtifactError(
                f"'{path}' holds a teacher for other samples (dataset {meta.get('dataset')!r}, samples "
                f"{meta.get('samples')}, fingerprint {meta.get('fingerprint')}); write to a new folder."
            )
        if list(_read_tokens(path / "items.txt")) != list(items):
            raise TeacherArtifactError(f"'{path}' lists other items; write to a new folder.")
    else:
        meta = {"format_version": FORMAT_VERSION, **dataset_info}
        _save_tokens(path / "items.txt", items)
    return path, meta


def _finish(path, meta):
    atomic_write(
        path / "teacher.yaml",
        lambda f: f.write(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).encode("utf-8")),
    )


def write_ranking(path, dataset_info, *, items, users, samples, topk, scores, target_scores, info):
    """Write a teacher's per-sample top-K into ``path`` (see the module docstring for the arrays).

    ``info`` must give ``score_kind`` and should say what the teacher is and how it was built
    (``teacher``, ``command``); it becomes teacher.yaml's ``ranking`` section.
    """
    if info.get("score_kind") not in SCORE_KINDS:
        raise ValueError(f"score_kind must be one of {SCORE_KINDS}, got {info.get('score_kind')!r}")
    path, meta = _begin(path, dataset_info, items)
    topk = np.asarray(topk, dtype=np.int32)
    _save_tokens(path / "users.txt", users)
    _save_npy(path / "samples.npy", np.asarray(samples, dtype=np.int32))
    _save_npy(path / "topk.npy", topk)
    _save_npy(path / "scores.npy", np.asarray(scores, dtype=np.float32))
    _save_npy(path / "target_scores.npy", np.asarray(target_scores, dtype=np.float32))
    meta["ranking"] = {"k": int(topk.shape[1]), "n_samples": int(topk.shape[0]), **info}
    _finish(path, meta)


def write_item_embeddings(path, dataset_info, *, items, embeddings, info):
    """Write one embedding row per item of ``items`` into ``path``; ``info`` becomes ``embedding``."""
    path, meta = _begin(path, dataset_info, items)
    embeddings = np.asarray(embeddings)
    if embeddings.dtype not in (np.float16, np.float32):
        embeddings = embeddings.astype(np.float32)
    if embeddings.shape[0] != len(items):
        raise ValueError(f"{embeddings.shape[0]} embedding rows for {len(items)} items")
    _save_npy(path / "item_embeddings.npy", embeddings)
    meta["embedding"] = {"dim": int(embeddings.shape[1]), **info}
    _finish(path, meta)
