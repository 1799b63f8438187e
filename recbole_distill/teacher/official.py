r"""Import the official DLLM2Rec teacher files into a teacher folder.

The official code (github.com/istarryn/DLLM2Rec) reads, from ``tocf/<dataset>/``:

- ``myrank_train.txt``: the teacher's top-n item ids for row ``r`` of the official ``train_data.df``;
- ``confidence_train.txt``: the L2 distances of the same items to the generated text (ascending);
- ``all_embeddings.pt``: ``[n_items, d]`` LLM item embeddings, row ``j`` for official item id ``j``;

and ``train_data.df`` (a pickled DataFrame; ``.csv`` also works) holds the rows: ``seq`` (the last
``seq_size`` item ids, right-padded with ``n_items``), ``len_seq`` and ``next``. Official ids are the
official data's own; ``--item_map`` maps them to RecBole item tokens (two tab-separated columns per line:
official id, item token). The official rows carry no user, so a row is matched to RecBole's samples by
its history and its target; it teaches every RecBole sample whose most recent ``seq_size`` items and next
item are the same (a teacher that reads only the history ranks them alike). Before anything is written the
importer checks the import and refuses it, naming the problem, when:

- any official id is missing from the map, or the map lists an id or a token twice;
- the files disagree on their number of rows or columns, or hold NaN or infinite values;
- fewer than ``--min_match`` of the official rows match a RecBole sample, or of RecBole's training
  samples are matched (a wrong id map or other data);
- the rankings are not aligned with ``train_data.df``'s rows: the teacher's top-n must contain a row's
  own next item more often than the next item of the rows one or two places away.

    python -m recbole_distill.teacher.official --dataset=ml-100k --official_path=tocf/ml-100k \
        --train_data=data/ml-100k/train_data.df --item_map=ml-100k_item_map.tsv --teacher_path=my_teacher
"""

from logging import getLogger
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from recbole.utils import init_logger, set_color

from recbole_distill.cli import ArgumentParser, command_line, config_files, fraction, positive_int, run_command
from recbole_distill.config import Config
from recbole_distill.data.alignment import target_hits
from recbole_distill.data.dataset import KeyedSequentialDataset, default_teacher_path
from recbole_distill.data.writer import TeacherWriter
from recbole_distill.errors import TeacherArtifactError
from recbole_distill.teacher.ranking import drop_history, resolve_exclude_history

RANK_FILE, CONFIDENCE_FILE, EMBEDDING_FILE = "myrank_train.txt", "confidence_train.txt", "all_embeddings.pt"
# a real teacher names its own row's next item far more often than a random row's (the shipped teachers:
# 6 x and 50 x; the tests' one-epoch teacher 2 x); rankings moved against their rows name both about equally
MIN_HIT_RATIO = 1.5


def _need(path):
    path = Path(path)
    if not path.is_file():
        raise TeacherArtifactError(f"'{path}' does not exist; give the official DLLM2Rec files (see --help).")
    return path


def read_item_map(path):
    """``{official id: item token}`` from a file of ``<official id>\\t<item token>`` lines."""
    mapping, tokens = {}, set()
    with open(_need(path), encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            official, _, token = line.partition("\t")
            if not official.strip().lstrip("-").isdigit() or not token:
                raise TeacherArtifactError(f"'{path}' line {number} is {line!r}; expected '<official id>\\t<item token>'.")
            official = int(official)
            if official in mapping or token in tokens:
                raise TeacherArtifactError(f"'{path}' line {number}: id {official} or token '{token}' appears twice.")
            mapping[official] = token
            tokens.add(token)
    return mapping


def read_train_data(path):
    """``(histories, lengths, targets)`` of the official ``train_data.df`` rows, in file order."""
    path = _need(path)
    try:
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_pickle(path)
    except Exception as e:  # a pickle can fail in many ways
        raise TeacherArtifactError(f"cannot read '{path}' as the official train_data.df: {e}") from e
    missing = {"seq", "len_seq", "next"} - set(frame.columns)
    if missing:
        raise TeacherArtifactError(f"'{path}' lacks the column(s) {sorted(missing)}; expected seq, len_seq, next.")
    seqs = [np.asarray(s if not isinstance(s, str) else s.strip("[]").replace(",", " ").split(), dtype=np.int64) for s in frame["seq"]]
    if len({len(s) for s in seqs}) > 1:
        raise TeacherArtifactError(f"'{path}': the rows of 'seq' have different lengths; expected one seq_size.")
    return np.stack(seqs), frame["len_seq"].to_numpy(np.int64), frame["next"].to_numpy(np.int64)


def _load_matrix(path, dtype):
    try:
        return np.loadtxt(_need(path), dtype=dtype, ndmin=2)
    except ValueError as e:
        raise TeacherArtifactError(f"'{path}' is not a whitespace-separated table of numbers: {e}") from e


class OfficialImport:
    """The official files, mapped to RecBole ids of ``dataset`` and matched to its samples."""

    def __init__(self, dataset, datasets, train_data, item_map, official_path):
        self.dataset, self.datasets = dataset, datasets
        self.official_path = Path(official_path)
        histories, self.lengths, targets = read_train_data(train_data)
        self.ranks = _load_matrix(self.official_path / RANK_FILE, np.int64)
        self.confidences = _load_matrix(self.official_path / CONFIDENCE_FILE, np.float64)
        self._check_shapes(len(targets))

        # official id -> RecBole item id (0: a token the dataset does not have)
        self.item_map = read_item_map(item_map)
        self.n_official = 1 + max(self.item_map)
        token2id = dataset.field2token_id[dataset.iid_field]
        self.official2id = np.zeros(self.n_official + 1, dtype=np.int64)  # the last slot: official padding
        for official, token in self.item_map.items():
            if official < 0:
                raise TeacherArtifactError(f"'{item_map}' has the negative official id {official}.")
            self.official2id[official] = token2id.get(token, 0)
        self.unknown_tokens = sum(token not in token2id for token in self.item_map.values())
        self.histories = self._to_ids("train_data 'seq'", histories, padding=self.n_official)
        self.targets = self._to_ids("train_data 'next'", targets)
        self.topk = self._to_ids(RANK_FILE, self.ranks)

    def _check_shapes(self, n_rows):
        shapes = {"train_data": (n_rows,), RANK_FILE: self.ranks.shape, CONFIDENCE_FILE: self.confidences.shape}
        if self.ranks.shape != self.confidences.shape or self.ranks.shape[0] != n_rows:
            raise TeacherArtifactError(
                f"the official files disagree on their rows: {shapes}. {RANK_FILE} and {CONFIDENCE_FILE} need one "
                "row per train_data.df row, in the same order, with the same columns; they are not from one run."
            )
        if not np.isfinite(self.confidences).all():
            raise TeacherArtifactError(f"'{self.official_path / CONFIDENCE_FILE}' holds NaN or infinite distances.")

    def _to_ids(self, what, official, padding=None):
        """RecBole ids of official ids (0 for padding and for tokens the dataset does not have)."""
        real = official != padding if padding is not None else np.ones_like(official, dtype=bool)
        outside = real & ((official < 0) | (official >= self.n_official))
        unmapped = real & ~outside
        unmapped[unmapped] = ~np.isin(official[unmapped], list(self.item_map))
        bad = np.flatnonzero((outside | unmapped).ravel())
        if len(bad):
            raise TeacherArtifactError(
                f"{what} uses {len(bad)} official item id(s) the item map does not have (first: "
                f"{official.ravel()[bad[0]]}); the map must list every official id (0 .. n_items - 1)."
            )
        return np.where(real, self.official2id[np.where(real, official, self.n_official)], 0)

    def match(self):
        """For every RecBole sample (train, valid, test in order), its official row or -1."""
        seq_size = self.histories.shape[1]
        # rows with the same history and target (other users) teach through the first of them
        first_row = {}
        self.first_of = np.full(len(self.targets), -1)
        for row, (history, length, target) in enumerate(zip(self.histories, self.lengths, self.targets)):
            if 0 < length <= seq_size and target > 0 and (history[:length] > 0).all() and not history[length:].any():
                self.first_of[row] = first_row.setdefault((history[:length].tobytes(), int(target)), row)
        rows = []
        for split in self.datasets:
            feat = split.inter_feat
            item_list, lengths = feat[self.dataset.item_id_list_field].numpy(), feat[self.dataset.item_list_length_field].numpy()
            for history, length, target in zip(item_list, lengths, feat[self.dataset.iid_field].numpy()):
                key = (history[max(0, length - seq_size) : length].astype(np.int64).tobytes(), int(target))
                rows.append(first_row.get(key, -1))
        return np.asarray(rows, dtype=np.int64)

    def alignment(self):
        """``(own, permuted)``: how often a row's top-n holds its own next item, and a random row's."""
        return target_hits(self.topk, self.targets)

    def embeddings(self):
        """The official item embeddings in RecBole item order (rows of ``items`` = ids 1 ..)."""
        path = _need(self.official_path / EMBEDDING_FILE)
        try:
            table = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise TeacherArtifactError(f"cannot read '{path}' as a tensor: {e}") from e
        if not isinstance(table, torch.Tensor) or table.dim() != 2 or table.shape[0] < self.n_official:
            shape = tuple(table.shape) if isinstance(table, torch.Tensor) else type(table).__name__
            raise TeacherArtifactError(
                f"'{path}' holds {shape}; expected a [n_items, d] tensor with a row for each of the map's "
                f"{self.n_official} official ids."
            )
        official_of = {self.dataset.field2token_id[self.dataset.iid_field][token]: official
                       for official, token in self.item_map.items() if self.official2id[official] > 0}
        missing = [i for i in range(1, self.dataset.item_num) if i not in official_of]
        if missing:
            raise TeacherArtifactError(
                f"{len(missing)} item(s) of dataset '{self.dataset.dataset_name}' are not in the item map, so "
                f"have no official embedding (first: '{self.dataset.id2token(self.dataset.iid_field, missing[0])}'). "
                "Import without --embeddings, or complete the map."
            )
        rows = table[[official_of[i] for i in range(1, self.dataset.item_num)]]
        if not torch.isfinite(rows).all():
            raise TeacherArtifactError(f"'{path}' holds NaN or infinite values.")
        return rows.numpy() if rows.dtype in (torch.float16, torch.float32) else rows.float().numpy()


def import_official(config, official_path, train_data, item_map, teacher_path=None, k=None, embeddings=True,
                    min_match=0.95, check_alignment=True, command=None):
    """Convert the official DLLM2Rec files into a teacher folder for ``config``'s data; return the report."""
    logger = getLogger()
    dataset = KeyedSequentialDataset(config)
    datasets = dataset.build()
    official = OfficialImport(dataset, datasets, train_data, item_map, official_path)

    rows = official.match()
    split = np.concatenate([np.full(len(d.inter_feat), s) for s, d in enumerate(datasets)])
    first = official.first_of
    report = {
        "official_rows": len(official.targets),
        "official_rows_matched": int(np.isin(official.first_of, rows[rows >= 0]).sum()),
        "official_rows_repeating_an_earlier_key": int(((first >= 0) & (first != np.arange(len(first)))).sum()),
        "train_samples": int((split == 0).sum()),
        "train_samples_matched": int(((rows >= 0) & (split == 0)).sum()),
        "valid_test_samples_matched": int(((rows >= 0) & (split > 0)).sum()),
        "item_map_tokens_not_in_dataset": official.unknown_tokens,
    }
    own, permuted = official.alignment()
    report["own_target_in_topn"] = round(own, 4)
    report["random_row_target_in_topn"] = round(permuted, 4)
    logger.info(set_color("official import", "blue") + f": {report}")

    row_share = report["official_rows_matched"] / max(report["official_rows"], 1)
    train_share = report["train_samples_matched"] / max(report["train_samples"], 1)
    if min(row_share, train_share) < min_match:
        raise TeacherArtifactError(
            f"only {row_share:.1%} of the official rows match a sample of dataset '{dataset.dataset_name}' by history "
            f"and next item, covering {train_share:.1%} of its {report['train_samples']} training samples (needed: "
            f"{min_match:.0%}). The item map does not map the official ids to the right items, or the official data "
            "were cut differently (filters, history length); fix the map or the dataset config, or lower --min_match."
        )
    if check_alignment and not own >= MIN_HIT_RATIO * permuted:
        raise TeacherArtifactError(
            f"the rankings do not line up with train_data.df's rows: the teacher's top-n holds a row's own next item "
            f"in {own:.2%} of rows and a random row's in {permuted:.2%} (needed: at least {MIN_HIT_RATIO} times as "
            f"often). {RANK_FILE} and {CONFIDENCE_FILE} must be row by row in train_data.df's order (was one of them "
            "shifted, sorted or cut?). If the teacher never ranks the true item, check it, then pass --skip_alignment_check."
        )

    k = k or official.topk.shape[1]
    keep = np.flatnonzero((rows >= 0) | (split == 0))  # every training sample needs a row; -1 = no candidate
    source = np.where(rows[keep] >= 0, rows[keep], 0)
    has = (rows[keep] >= 0)[:, None]
    topk = np.where(has, official.topk[source, :k], 0)
    distances = official.confidences[source, :k]
    targets = np.concatenate([d.inter_feat[dataset.iid_field].numpy() for d in datasets])[keep]
    # the distance to the true item is known when it is a stored candidate; else the last one bounds it below
    at_target = topk == targets[:, None]
    target_scores = np.where(at_target.any(axis=1), (distances * at_target).sum(axis=1), distances[:, -1])
    writer = TeacherWriter(teacher_path or default_teacher_path(config["dataset"]), dataset, datasets)
    table = writer.table
    exclude_history = resolve_exclude_history(config["teacher_exclude_history"], dataset)
    if exclude_history:
        topk, distances = drop_history(topk, distances, dataset, table["user"][keep], table["pos"][keep])

    writer.write_ranking(
        topk, distances, np.where(has[:, 0], target_scores, 0.0), rows=keep,
        info={
            "teacher": f"official DLLM2Rec files {official_path} (rows of {train_data})",
            "score_kind": "distance",
            "exclude_history": exclude_history,
            "import_report": report,
            "target_scores": "distance to the true item when it is a stored candidate, else the last candidate's (a lower bound)",
            "command": command or "import_official(...)",
        },
    )
    if embeddings:
        writer.write_item_embeddings(
            official.embeddings(),
            {"source": f"official DLLM2Rec {Path(official_path) / EMBEDDING_FILE}", "command": command or "import_official(...)"},
        )
    logger.info(set_color("Official teacher imported", "blue") + f": {writer.path}")
    return report


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--dataset", "-d", default="ml-100k", help="name of datasets")
    parser.add_argument("--config_files", default=None, help="config files shaping the dataset, as for training")
    parser.add_argument("--official_path", required=True, help=f"folder with {RANK_FILE}, {CONFIDENCE_FILE}, {EMBEDDING_FILE}")
    parser.add_argument("--train_data", required=True, help="the official train_data.df the rankings are aligned with")
    parser.add_argument("--item_map", required=True, help="file of '<official id>\\t<RecBole item token>' lines")
    parser.add_argument("--teacher_path", default=None, help="output folder (default: dataset/<dataset>/teacher)")
    parser.add_argument("--topk", type=positive_int, default=None, help="candidates kept per sample (default: all stored)")
    parser.add_argument("--no_embeddings", action="store_true", help=f"import the rankings only, not {EMBEDDING_FILE}")
    parser.add_argument("--min_match", type=fraction, default=0.95, help="least share of rows and training samples matched")
    parser.add_argument("--skip_alignment_check", action="store_true", help="import even if the row order cannot be confirmed")
    args, _ = parser.parse_known_args()
    config = Config(model="SASRec", dataset=args.dataset, config_file_list=config_files(args.config_files))
    init_logger(config)
    import_official(config, args.official_path, args.train_data, args.item_map, args.teacher_path, args.topk,
                    not args.no_embeddings, args.min_match, not args.skip_alignment_check,
                    command_line("recbole_distill.teacher.official"))


if __name__ == "__main__":
    run_command(main)
