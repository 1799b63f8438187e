r"""Per-request latency of a student as it would be served, against the teacher, on real histories.

For each engine, the same histories (the checkpoint's test samples, then validation and training
samples until ``--requests`` are reached; all real) are answered with the top-N items:

- ``eager``: the checkpoint in PyTorch (its ``full_sort_predict`` and a top-N);
- ``torchscript`` and ``onnxruntime``: the exports of :mod:`recbole_distill.serving.export`;
- ``teacher``: the teacher checkpoint (for example PreBERT) in PyTorch, the same way as ``eager``.

Latency is measured at batch 1, one request after another (p50 / p95 / p99 / mean, milliseconds, after a
warm-up); throughput at batch 256 (histories per second over all requests). Threads are each runtime's
default (torch: one per core; ONNX Runtime: one per physical core).

    python -m recbole_distill.benchmark.latency --model_file=saved/DLLM2RecSASRec-....pth \
        --teacher_model_file=saved/PreBERT-....pth --output=results/ml-100k/latency
"""

import csv
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from recbole_distill.cli import ArgumentParser, positive_int, run_command
from recbole_distill.quick_start import load_data_and_model
from recbole_distill.serving.export import TopN, export_for_serving
from recbole_distill.serving.recommend import Recommender

WARMUP = 20
COLUMNS = ["engine", "model", "requests", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "throughput_at_256_per_s"]


def real_histories(model_file, count):
    """``count`` real ``(item_seq, item_seq_len)`` histories of the checkpoint's data: test, valid, train."""
    _, model, dataset, train_data, valid_data, test_data = load_data_and_model(model_file)
    seqs, lengths = [], []
    for loader in (test_data, valid_data, train_data):
        feat = loader._dataset.inter_feat
        seqs.append(feat[dataset.item_id_list_field].numpy())
        lengths.append(feat[dataset.item_list_length_field].numpy())
    return model.cpu().eval(), np.concatenate(seqs)[:count], np.concatenate(lengths)[:count]


def _eager(model, n):
    graph = TopN(model, n).eval()

    def run(item_seq, item_seq_len):
        with torch.inference_mode():
            return graph(torch.from_numpy(item_seq), torch.from_numpy(item_seq_len))

    return run


def measure(run, item_seq, item_seq_len, desc, batch_size=256):
    """Batch-1 latencies (ms) over every history, and batch-``batch_size`` throughput (histories / s)."""
    for i in range(min(WARMUP, len(item_seq))):
        run(item_seq[i : i + 1], item_seq_len[i : i + 1])
    latencies = []
    for i in tqdm(range(len(item_seq)), desc=f"{desc:<12}", ncols=100, leave=False):
        start = time.perf_counter()
        run(item_seq[i : i + 1], item_seq_len[i : i + 1])
        latencies.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    for i in range(0, len(item_seq), batch_size):
        run(item_seq[i : i + batch_size], item_seq_len[i : i + batch_size])
    throughput = len(item_seq) / (time.perf_counter() - start)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    return {"requests": len(latencies), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "mean_ms": float(np.mean(latencies)), "throughput_at_256_per_s": throughput}


def latency_benchmark(model_file, teacher_model_file=None, requests=1000, n=10, output=None, serving_folder=None):
    """Measure every engine on the same ``requests`` histories; write ``<output>.csv`` / ``.md``; return rows."""
    model, item_seq, item_seq_len = real_histories(model_file, requests)
    name = type(model).__name__
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(serving_folder or tmp)
        if not (folder / "serving.json").is_file():
            export_for_serving(model_file, folder, n=n)
        exports = {backend: Recommender(folder, backend) for backend in ("torchscript", "onnx")}
        n = exports["onnx"].n  # an existing export decides N, for every engine
        histories = (item_seq, item_seq_len)
        engines = [("eager", name, _eager(model, n), histories)]
        engines += [(engine, name, exports[backend].top_ids, histories) for backend, engine in (("torchscript", "torchscript"), ("onnx", "onnxruntime"))]
        if teacher_model_file:  # the same samples, in the teacher's own layout (its history length)
            teacher, *teacher_histories = real_histories(teacher_model_file, requests)
            engines.append(("teacher (eager)", type(teacher).__name__, _eager(teacher, n), teacher_histories))
        rows = [{"engine": engine, "model": label, **measure(run, *inputs, engine)} for engine, label, run, inputs in engines]
    if output:
        write_latency(rows, Path(output), model_file, teacher_model_file)
    return rows


def _cpu():
    """The processor's name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def write_latency(rows, output, model_file, teacher_model_file):
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output.with_suffix(".csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    teacher = next((row for row in rows if row["engine"].startswith("teacher")), None)
    lines = [
        f"Student `{model_file}`" + (f", teacher `{teacher_model_file}`" if teacher_model_file else "") + f"; "
        f"{rows[0]['requests']} real histories; {_cpu()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "",
        "| engine | model | p50 ms | p95 ms | p99 ms | mean ms | histories / s at batch 256 |"
        + (" teacher p99 / this p99 |" if teacher else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if teacher else ""),
    ]
    for row in rows:
        ratio = f" {teacher['p99_ms'] / row['p99_ms']:.1f} x |" if teacher else ""
        lines.append(f"| {row['engine']} | {row['model']} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['p99_ms']:.2f} | "
                     f"{row['mean_ms']:.2f} | {row['throughput_at_256_per_s']:,.0f} |" + ratio)
    output.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--model_file", required=True, help="the student checkpoint")
    parser.add_argument("--teacher_model_file", default=None, help="the teacher checkpoint (e.g. PreBERT)")
    parser.add_argument("--requests", type=positive_int, default=1000, help="real histories to answer (at least 1,000 for p99)")
    parser.add_argument("--n", type=positive_int, default=10, help="items per answer")
    parser.add_argument("--serving_folder", default=None, help="an existing export to time (default: export afresh)")
    parser.add_argument("--output", default=None, help="write <output>.csv and <output>.md")
    args = parser.parse_args()
    rows = latency_benchmark(args.model_file, args.teacher_model_file, args.requests, args.n, args.output, args.serving_folder)
    for row in rows:
        print(f"{row['engine']:<16} {row['model']:<16} p50 {row['p50_ms']:7.2f}  p95 {row['p95_ms']:7.2f}  "
              f"p99 {row['p99_ms']:7.2f} ms   {row['throughput_at_256_per_s']:9,.0f} histories/s at batch 256")


if __name__ == "__main__":
    run_command(main)
