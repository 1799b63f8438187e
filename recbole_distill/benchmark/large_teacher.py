r"""What a large teacher costs: a synthetic catalogue, loaded through RecBole and the plugin's join.

Writes a synthetic data set (``--users`` histories of ``--samples / --users + 1`` interactions, every one
of ``--items`` items used) and a teacher for it with the plugin's own writers (top-``--k`` per sample,
an ``--items`` x ``--dim`` embedding table), then builds RecBole's dataset twice: without the teacher
(:class:`KeyedSequentialDataset`) and with it (:class:`TeacherSequentialDataset`, which memory-maps the
arrays, checks them and joins them onto the samples). Reported, as JSON: the time and resident memory
of each build, of the teacher's parts (ranking join, embedding alignment), and the cost of gathering a
training batch's teacher fields, as RecBole's data loader does.

    python -m recbole_distill.benchmark.large_teacher                       # 5M samples, K=20, 1M items
    python -m recbole_distill.benchmark.large_teacher --samples=20000 --items=5000 --users=400

Nothing is written outside ``--folder`` (a temporary folder, removed afterwards, unless given).
"""

import gc
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_distill.cli import ArgumentParser, positive_int, run_command
from recbole_distill.config import Config
from recbole_distill.data.dataset import (
    TEACHER_SCORE,
    TEACHER_TARGET_SCORE,
    TEACHER_TOPK,
    KeyedSequentialDataset,
    TeacherSequentialDataset,
)
from recbole_distill.data.writer import TeacherWriter

DATASET = "synthetic"


def resident_mib():
    """This process's memory in MiB, from /proc: anonymous resident memory (what it holds; mapped file
    pages belong to the page cache), all resident memory, and the peak of the latter."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return tuple(int(status[key].split()[0]) / 1024 for key in ("RssAnon", "VmRSS", "VmHWM"))


def growth(before, after):
    """Held memory gained, and the peak above where it started (MiB)."""
    return {"resident_mib": after[0] - before[0], "peak_mib": after[2] - before[1]}


def reset_peak():
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size


def write_interactions(folder, users, samples, items, seed):
    """``users`` histories with ``samples // users + 1`` interactions each; every item appears at least once."""
    length = samples // users + 1
    rng = np.random.default_rng(seed)
    item_column = rng.integers(0, items, users * length)
    item_column[rng.permutation(users * length)[:items]] = np.arange(items)
    user_column = np.repeat(np.arange(users), length)
    time_column = np.tile(np.arange(length), users)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{DATASET}.inter", "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for start in range(0, len(user_column), 1_000_000):
            end = start + 1_000_000
            rows = zip(user_column[start:end], item_column[start:end], time_column[start:end])
            f.write("".join(f"u{u}\ti{i}\t{t}\n" for u, i, t in rows))


def write_teacher(dataset, datasets, path, k, n_items, dim, seed):
    """A teacher of ``n_items`` items for every sample of ``datasets`` (``dataset``'s splits), written with the
    plugin's writer."""
    writer = TeacherWriter(path, dataset, datasets, items=[f"i{i}" for i in range(n_items)])
    rng = np.random.default_rng(seed)
    n = len(writer)
    scores = -np.sort(rng.random((n, k), dtype=np.float32), axis=1)  # best first, as a teacher's logits
    topk = rng.integers(1, dataset.item_num, (n, k))  # RecBole item ids
    topk[:, 0] = writer.table["item"]  # a teacher that ranks the true item first passes the alignment check
    writer.write_ranking(topk, scores, scores[:, 0], {"score_kind": "logit", "teacher": "synthetic"})
    writer.write_item_embeddings(rng.standard_normal((n_items, dim), dtype=np.float32), {"source": "synthetic"})
    return n


def timed_build(dataset_class, config, measures):
    """Build ``dataset_class`` and record its time and memory; the teacher's parts are timed inside it."""
    gc.collect()
    reset_peak()
    before = resident_mib()
    start = time.perf_counter()
    dataset = dataset_class(config)
    datasets = dataset.build()
    measures.update(seconds=time.perf_counter() - start, **growth(before, resident_mib()))
    return dataset, datasets


def timed(name, function, parts):
    """Wrap a method so that each call records its time and resident-memory growth under ``name``."""

    def wrapper(*args, **kwargs):
        reset_peak()
        before = resident_mib()
        start = time.perf_counter()
        result = function(*args, **kwargs)
        parts[name] = {"seconds": time.perf_counter() - start, **growth(before, resident_mib())}
        return result

    return wrapper


def batch_gather_ms(train, batch_size, fields, repeats=200, seed=0):
    """Mean time (ms) to gather ``fields`` of a random batch of training samples, as RecBole's loader does."""
    columns = Interaction({field: train.inter_feat[field] for field in fields})
    generator = torch.Generator().manual_seed(seed)
    batches = [torch.randint(len(columns), (batch_size,), generator=generator) for _ in range(repeats)]
    start = time.perf_counter()
    for index in batches:
        columns[index]
    return (time.perf_counter() - start) / repeats * 1000


def measure(samples=5_000_000, k=20, items=1_000_000, users=100_000, dim=384, batch_size=2048, folder=None, seed=2020):
    """Build the synthetic data and teacher in ``folder`` and return the measurements (see the module docstring)."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(folder or temporary)
        start = time.perf_counter()
        write_interactions(folder / DATASET, users, samples, items, seed)
        config = Config(
            model="DLLM2RecSASRec",
            dataset=DATASET,
            config_dict={
                "data_path": str(folder),
                "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
                "teacher_path": str(folder / "teacher"),
                "teacher_k": k,
                "show_progress": False,
            },
        )
        written = time.perf_counter() - start
        without, with_teacher, parts = {}, {}, {}
        # the build without the teacher is measured, then gives the samples the teacher is written for
        dataset, splits = timed_build(KeyedSequentialDataset, config, without)
        start = time.perf_counter()
        n = write_teacher(dataset, splits, folder / "teacher", k, items, dim, seed)
        written += time.perf_counter() - start
        sizes = {file.name: file.stat().st_size / 2**20 for file in (folder / "teacher").iterdir()}
        del dataset, splits
        original = TeacherSequentialDataset._join_rankings, TeacherSequentialDataset._aligned_item_embeddings
        TeacherSequentialDataset._join_rankings = timed("ranking join", original[0], parts)
        TeacherSequentialDataset._aligned_item_embeddings = timed("embedding alignment", original[1], parts)
        try:
            dataset, splits = timed_build(TeacherSequentialDataset, config, with_teacher)
        finally:
            TeacherSequentialDataset._join_rankings, TeacherSequentialDataset._aligned_item_embeddings = original
        teacher_fields = [TEACHER_TOPK, TEACHER_SCORE, TEACHER_TARGET_SCORE]
        train = splits[0]
        own_fields = [field for field in train.inter_feat.columns if field not in teacher_fields]
        return {
            "samples": n,
            "k": k,
            "items": items,
            "embedding_dim": dim,
            "artifact_mib": sizes,
            "write_seconds": round(written, 1),
            "build_without_teacher": without,
            "build_with_teacher": with_teacher,
            "teacher_parts": parts,
            "teacher_fields_mib": sum(
                split.inter_feat[f].element_size() * split.inter_feat[f].numel() for split in splits for f in teacher_fields
            ) / 2**20,
            "embedding_table_mib": dataset.teacher_item_embedding.element_size() * dataset.teacher_item_embedding.numel() / 2**20,
            "batch_size": batch_size,
            "batch_gather_ms": {
                "teacher fields": batch_gather_ms(train, batch_size, teacher_fields),
                "RecBole's own fields": batch_gather_ms(train, batch_size, own_fields),
            },
        }


def main():
    parser = ArgumentParser(__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=positive_int, default=5_000_000, help="samples (history prefix, next item)")
    parser.add_argument("--k", type=positive_int, default=20, help="teacher candidates per sample")
    parser.add_argument("--items", type=positive_int, default=1_000_000, help="items in the catalogue and embedding table")
    parser.add_argument("--users", type=positive_int, default=100_000, help="users (histories)")
    parser.add_argument("--dim", type=positive_int, default=384, help="teacher embedding size")
    parser.add_argument("--batch_size", type=positive_int, default=2048, help="training batch for the gather cost")
    parser.add_argument("--folder", type=str, default=None, help="keep the synthetic data here")
    parser.add_argument("--output", type=str, default=None, help="also write the JSON here")
    args = parser.parse_args()
    result = measure(args.samples, args.k, args.items, args.users, args.dim, args.batch_size, args.folder)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    run_command(main)
