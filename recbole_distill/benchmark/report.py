"""Benchmark bookkeeping: the runs file, and the markdown table and plots made from it."""

import csv
import math
import os
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from recbole_distill.benchmark.bootstrap import paired_bootstrap
from recbole_distill.model.abstract_recommender import is_plugin_model
from recbole_distill.utils import get_model

TEACHER = "TeacherRanking"
# in leave-one-out data recall@K equals hit@K and precision@K is hit@K / K: the table leaves them out
REDUNDANT = ("recall@", "precision@")


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


def per_user_file(folder, row):
    """Where a run's per-user test values are kept: ``<folder>/users/<label>-<seed>.csv``."""
    return Path(folder) / "users" / f"{label(row)}-{row['seed']}.csv"


def write_per_user(folder, row, per_user):
    """Write ``per_user`` (``metric``, ``users``, ``values``, from the run) next to the runs file."""
    path = per_user_file(folder, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"user,{per_user['metric']}"] + [f"{u},{v!r}" for u, v in zip(per_user["users"], per_user["values"])]
    path.write_text("\n".join(lines) + "\n")


def read_per_user(folder, row):
    """``{user token: value}`` of a run, or None when it was not kept (runs from before per-user files)."""
    path = per_user_file(folder, row)
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        return {record[0]: float(record[1]) for record in list(csv.reader(f))[1:]}


def plain_twin(model):
    """The name of the model a distilled student is measured against (:meth:`PluginRecommender.twin`:
    ``DLLM2RecSASRec`` -> ``SASRec``, ``DLLM2RecDROS`` -> ``DROS``); None for models that are no students."""
    cls = get_model(model)
    twin = cls.twin() if is_plugin_model(cls) else None
    return twin.__name__ if twin else None


def runs_by_label(rows):
    """``{label: [rows]}`` in the order the runs file first names them."""
    by_label = defaultdict(list)
    for row in rows:
        by_label[label(row)].append(row)
    return by_label


def summarise(rows):
    """Per model (and variant): mean and sample std over seeds of every numeric column."""
    summary = {}
    for name, runs in runs_by_label(rows).items():
        stats = {"model": runs[0]["model"], "seeds": len(runs)}
        for column in runs[0]:
            try:
                values = [float(run[column]) for run in runs]
            except (TypeError, ValueError):
                continue
            stats[column] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        summary[name] = stats
    return summary


def metrics_of(rows):
    """The selecting metric (``valid_<metric>`` column) and the test columns to show, that metric's first."""
    metric = next(c.removeprefix("valid_") for row in rows for c in row if c.startswith("valid_"))
    tests = list(dict.fromkeys(c for row in rows for c in row if c.startswith("test_")))
    shown = [c for c in tests if not c.removeprefix("test_").startswith(REDUNDANT)]
    return metric, sorted(shown, key=lambda c: c != f"test_{metric}")


def _quality(stats, column):
    if column not in stats:
        return ""
    mean, std = stats[column]
    return f"{mean:.4f} ± {std:.4f}" if stats["seeds"] > 1 else f"{mean:.4f}"


def _mean(stats, column, digits):
    return f"{stats[column][0]:,.{digits}f}" if column in stats else ""


def _percent(value):
    return f"{value * 100:+.1f} %"


def seeds_of(runs):
    """The seeds a list of runs covers."""
    return {int(r["seed"]) for r in runs}


def paired_values(folder, runs_by_name, names):
    """Per-user values of the runs ``names``, averaged over their common seeds, on their common users; None
    when a run lacks its per-user file. The teacher row plays back one artifact whatever its seed, so its
    seeds do not narrow the others': it is averaged over the seeds it has."""
    seeds = set.intersection(*(seeds_of(runs_by_name[n]) for n in names if n != TEACHER))
    tables = []
    for name in names:
        runs = runs_by_name[name]
        per_seed = [read_per_user(folder, r) for r in runs if name == TEACHER or int(r["seed"]) in seeds]
        if not per_seed or any(t is None for t in per_seed):
            return None, seeds
        tables.append(per_seed)
    users = sorted(set.intersection(*(set(t) for per_seed in tables for t in per_seed)))
    return [np.mean([[t[u] for u in users] for t in per_seed], axis=0) for per_seed in tables], seeds


def intervals(rows, folder):
    """Per distilled student: its gain over its twin and share of the teacher's lead, with 95 % paired
    bootstrap intervals over test users (per-user values averaged over the seeds both runs have)."""
    runs_by_name = runs_by_label(rows)
    result = {}
    for name, runs in runs_by_name.items():
        twin = plain_twin(runs[0]["model"])
        if twin not in runs_by_name:
            continue
        names = [name, twin] + ([TEACHER] if TEACHER in runs_by_name else [])
        values, seeds = paired_values(folder, runs_by_name, names)
        if values is None and len(names) == 3:
            names = names[:2]
            values, seeds = paired_values(folder, runs_by_name, names)
        if values is not None:
            result[name] = {"seeds": len(seeds), "users": len(values[0]), **paired_bootstrap(*values)}
    return result


def epoch_ratio(runs, twin_runs):
    """A student's mean epoch time over its twin's, on the seeds both have (on all seeds when they share
    none), so that a twin run on more seeds than its student does not skew the ratio."""
    common = seeds_of(runs) & seeds_of(twin_runs)

    def mean(chosen):
        return statistics.mean(float(r["seconds_per_epoch"]) for r in chosen if not common or int(r["seed"]) in common)

    return mean(runs) / mean(twin_runs)


def write_table(rows, path):
    """Markdown table: quality (mean +- std over seeds) and cost per run; each distilled student's gain over
    its plain twin and the share of the teacher's (``TeacherRanking``) lead it recovers, with 95 % paired
    bootstrap intervals where per-user values were kept (the gain then on the seeds both runs have, the ones
    its interval pairs), and its epoch time over the twin's on their common seeds; all on the metric that
    selected the epoch."""
    summary = summarise(rows)
    runs_by_name = runs_by_label(rows)
    metric, quality = metrics_of(rows)
    test = f"test_{metric}"
    teacher = summary.get(TEACHER)
    bounds = intervals(rows, Path(path).parent)
    header = ["model", "seeds", *[c.removeprefix("test_") for c in quality], f"valid {metric}", "s / epoch",
              "inference ms / 1k users", "parameters", "peak MB", f"{metric} vs twin [95 % CI]",
              "teacher's lead recovered [95 % CI]", "epoch time vs twin"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, stats in summary.items():
        twin_name = plain_twin(stats["model"]) or ""
        twin = summary.get(twin_name)
        gain = share = ""
        if twin:
            gain = _percent(stats[test][0] / twin[test][0] - 1)
            if teacher and teacher[test][0] != twin[test][0]:
                share = f"{(stats[test][0] - twin[test][0]) / (teacher[test][0] - twin[test][0]) * 100:.0f} %"
        if name in bounds:  # point and interval from the same paired users and seeds
            b = bounds[name]
            gain = f"{_percent(b['gain'])} [{_percent(b['gain_low'])}, {_percent(b['gain_high'])}]"
            if "share" in b:
                share = f"{b['share'] * 100:.0f} % [{b['share_low'] * 100:.0f}, {b['share_high'] * 100:.0f} %]"
        cells = [name, str(stats["seeds"])]
        cells += [_quality(stats, c) for c in quality]
        cells += [
            _mean(stats, f"valid_{metric}", 4),
            _mean(stats, "seconds_per_epoch", 1) if stats["model"] != TEACHER else "",
            f"{stats['inference_seconds_per_1000_users'][0] * 1000:,.0f}" if "inference_seconds_per_1000_users" in stats else "",
            _mean(stats, "parameters", 0),
            _mean(stats, "peak_memory_mb", 0),
            gain,
            share,
            f"{epoch_ratio(runs_by_name[name], runs_by_name[twin_name]):.2f} x" if twin else "",
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
    """``quality.png`` (the selecting metric on test per model, mean and std over seeds; grey: RecBole, blue:
    distilled, orange: teacher) and ``quality_vs_inference.png`` (that metric against full-ranking inference
    time)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    metric, _ = metrics_of(rows)
    test = f"test_{metric}"
    names = list(summary)
    means = [summary[n][test][0] for n in names]
    stds = [summary[n][test][1] for n in names]
    colours = [_colour(summary[n]) for n in names]
    seeds = max(summary[n]["seeds"] for n in names)

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    ax.barh(names, means, xerr=stds, color=colours, capsize=3)
    for y, (mean, std) in enumerate(zip(means, stds)):
        ax.text(mean + std + max(means) * 0.01, y, f"{mean:.4f}", va="center", fontsize=8)
    ax.set_xlim(0, max(m + s for m, s in zip(means, stds)) * 1.15)
    ax.invert_yaxis()
    ax.set_xlabel(f"test {metric} (mean ± std over up to {seeds} seed(s))")
    fig.tight_layout()
    fig.savefig(Path(folder) / "quality.png", dpi=120)
    plt.close(fig)

    timed = [n for n in names if "inference_seconds_per_1000_users" in summary[n]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n in timed:
        x = summary[n]["inference_seconds_per_1000_users"][0] * 1000
        ax.errorbar(x, summary[n][test][0], yerr=summary[n][test][1], fmt="o",
                    color=_colour(summary[n]), capsize=3)
        ax.annotate(n, (x, summary[n][test][0]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(_minor_tick))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("full-ranking inference, ms per 1,000 users (log scale)")
    ax.set_ylabel(f"test {metric}")
    fig.tight_layout()
    fig.savefig(Path(folder) / "quality_vs_inference.png", dpi=120)
    plt.close(fig)
