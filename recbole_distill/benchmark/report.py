"""Benchmark bookkeeping: the runs file, and the markdown table and plots made from it."""

import csv
import math
import os
import statistics
from collections import defaultdict
from pathlib import Path

from recbole_distill.utils import get_model

QUALITY = ["test_ndcg@10", "test_hit@10", "test_ndcg@20", "test_hit@20", "test_mrr@10"]
TEACHER = "TeacherRanking"


def label(row):
    """A run's name in tables and plots: its model, and its variant (ablation) in brackets if any."""
    return f"{row['model']}[{row['variant']}]" if row.get("variant") else row["model"]


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
    """Per model (and variant): mean and sample std over seeds of every numeric column."""
    by_model = defaultdict(list)
    for row in rows:
        by_model[label(row)].append(row)
    summary = {}
    for name, runs in by_model.items():
        stats = {"model": runs[0]["model"], "seeds": len(runs)}
        for column in runs[0]:
            try:
                values = [float(run[column]) for run in runs]
            except (TypeError, ValueError):
                continue
            stats[column] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        summary[name] = stats
    return summary


def _gain(value, base):
    return f"{(value / base - 1) * 100:+.1f} %" if base else "n/a"


def _quality(stats, column):
    if column not in stats:
        return ""
    mean, std = stats[column]
    return f"{mean:.4f} ± {std:.4f}" if stats["seeds"] > 1 else f"{mean:.4f}"


def _mean(stats, column, digits):
    return f"{stats[column][0]:,.{digits}f}" if column in stats else ""


def write_table(rows, path):
    """Markdown table: quality (mean +- std), cost, each student's change over its plain twin, and its
    share of the teacher's NDCG@10 (the ``TeacherRanking`` row)."""
    summary = summarise(rows)
    teacher = summary.get(TEACHER)
    header = ["model", "seeds", *[c.removeprefix("test_") for c in QUALITY], "valid ndcg@10", "s / epoch",
              "inference ms / 1k users", "parameters", "peak MB", "NDCG@10 vs twin", "epoch time vs twin",
              "NDCG@10 / teacher"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, stats in summary.items():
        twin = summary.get(plain_twin(stats["model"]) or "")
        cells = [name, str(stats["seeds"])]
        cells += [_quality(stats, c) for c in QUALITY]
        cells += [
            _mean(stats, "valid_ndcg@10", 4),
            _mean(stats, "seconds_per_epoch", 1) if stats["model"] != TEACHER else "",
            f"{stats['inference_seconds_per_1000_users'][0] * 1000:,.0f}" if "inference_seconds_per_1000_users" in stats else "",
            _mean(stats, "parameters", 0),
            _mean(stats, "peak_memory_mb", 0),
            _gain(stats["test_ndcg@10"][0], twin["test_ndcg@10"][0]) if twin else "",
            f"{stats['seconds_per_epoch'][0] / twin['seconds_per_epoch'][0]:.2f} x" if twin else "",
            f"{stats['test_ndcg@10'][0] / teacher['test_ndcg@10'][0] * 100:.0f} %" if teacher and stats is not teacher else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n")
    return "\n".join(lines)


def _colour(stats):
    if stats["model"] == TEACHER:
        return "tab:orange"
    return "tab:blue" if plain_twin(stats["model"]) else "tab:gray"


def _minor_tick(value, _):
    """Label the 2, 3 and 5 of each decade only, so that log-scale ticks stay legible."""
    return f"{value:g}" if value > 0 and round(value / 10 ** math.floor(math.log10(value))) in (2, 3, 5) else ""


def write_plots(rows, folder):
    """``quality.png`` (test NDCG@10 per model, mean and std over seeds; grey: RecBole, blue: distilled,
    orange: teacher) and ``quality_vs_inference.png`` (test NDCG@10 against full-ranking inference time)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    names = list(summary)
    means = [summary[n]["test_ndcg@10"][0] for n in names]
    stds = [summary[n]["test_ndcg@10"][1] for n in names]
    colours = [_colour(summary[n]) for n in names]
    seeds = max(summary[n]["seeds"] for n in names)

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    ax.barh(names, means, xerr=stds, color=colours, capsize=3)
    for y, (mean, std) in enumerate(zip(means, stds)):
        ax.text(mean + std + max(means) * 0.01, y, f"{mean:.4f}", va="center", fontsize=8)
    ax.set_xlim(0, max(m + s for m, s in zip(means, stds)) * 1.15)
    ax.invert_yaxis()
    ax.set_xlabel(f"test NDCG@10 (mean ± std over up to {seeds} seed(s))")
    fig.tight_layout()
    fig.savefig(Path(folder) / "quality.png", dpi=120)
    plt.close(fig)

    timed = [n for n in names if "inference_seconds_per_1000_users" in summary[n]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n in timed:
        x = summary[n]["inference_seconds_per_1000_users"][0] * 1000
        ax.errorbar(x, summary[n]["test_ndcg@10"][0], yerr=summary[n]["test_ndcg@10"][1], fmt="o",
                    color=_colour(summary[n]), capsize=3)
        ax.annotate(n, (x, summary[n]["test_ndcg@10"][0]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(_minor_tick))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("full-ranking inference, ms per 1,000 users (log scale)")
    ax.set_ylabel("test NDCG@10")
    fig.tight_layout()
    fig.savefig(Path(folder) / "quality_vs_inference.png", dpi=120)
    plt.close(fig)
