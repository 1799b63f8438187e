"""Benchmark bookkeeping: the runs file, and the markdown table made from it."""

import csv
import os
import statistics
from collections import defaultdict
from pathlib import Path

from recbole_distill.utils import get_model

QUALITY = ["test_ndcg@10", "test_hit@10", "test_ndcg@20", "test_hit@20", "test_mrr@10"]


def read_runs(path):
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_row(path, row):
    """Add one finished run; the file is rewritten atomically, so a crash never leaves half a row."""
    rows = read_runs(path) + [{key: str(value) for key, value in row.items()}]
    columns = list(dict.fromkeys(key for r in rows for key in r))
    tmp = Path(f"{path}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def plain_twin(model):
    """The RecBole model a plugin model extends (``DLLM2RecSASRec`` -> ``SASRec``, ``MiniBERT`` ->
    ``BERT4Rec``); None for RecBole's own models and for plugin models that extend none (``PreBERT``)."""
    cls = get_model(model)
    if cls.__module__.startswith("recbole."):
        return None
    twins = (c.__name__ for c in cls.__mro__[1:] if c.__module__.startswith("recbole.model.") and "_recommender." in c.__module__)
    return next(twins, None)


def summarise(rows):
    """Per model: mean and sample std over seeds of every numeric column."""
    by_model = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)
    summary = {}
    for model, runs in by_model.items():
        stats = {"seeds": len(runs)}
        for column in runs[0]:
            try:
                values = [float(run[column]) for run in runs]
            except (TypeError, ValueError):
                continue
            stats[column] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        summary[model] = stats
    return summary


def _gain(value, base):
    return f"{(value / base - 1) * 100:+.1f} %" if base else "n/a"


def write_table(rows, path):
    """Markdown table: quality (mean +- std), cost, and each student's change over its plain twin."""
    summary = summarise(rows)
    header = ["model", "seeds", *[c.removeprefix("test_") for c in QUALITY], "s / epoch", "inference s / 1k users",
              "parameters", "peak MB", "NDCG@10 vs twin", "epoch time vs twin"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, stats in summary.items():
        twin = summary.get(plain_twin(model) or "")
        cells = [model, str(stats["seeds"])]
        cells += [f"{stats[c][0]:.4f} ± {stats[c][1]:.4f}" if c in stats else "" for c in QUALITY]
        cells += [
            f"{stats['seconds_per_epoch'][0]:.1f}",
            f"{stats['inference_seconds_per_1000_users'][0]:.3f}",
            f"{stats['parameters'][0]:,.0f}",
            f"{stats['peak_memory_mb'][0]:,.0f}",
            _gain(stats["test_ndcg@10"][0], twin["test_ndcg@10"][0]) if twin else "",
            f"{stats['seconds_per_epoch'][0] / twin['seconds_per_epoch'][0]:.2f} x" if twin else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n")
    return "\n".join(lines)
