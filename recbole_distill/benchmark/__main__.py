r"""Benchmark: RecBole baselines and distilled students under one protocol, one process per run.

    python -m recbole_distill.benchmark --dataset=ml-100k --models=SASRec,DLLM2RecSASRec --seeds=2020 \
        --config_files=results/protocol.yaml --output=results/ml-100k

Every (model, seed) is trained with early stopping on validation, tested with RecBole's full-ranking
evaluator, and timed; the row goes into ``<output>/runs.csv`` as soon as it finishes, so an interrupted
benchmark resumes where it stopped (finished runs are skipped). ``<output>/results.md`` gets the table:
mean +- std over seeds and the gain of each distilled student over its plain twin.
Other ``--key=value`` flags reach every run's config, as in RecBole.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from recbole.utils import set_color
from tqdm import tqdm

from recbole_distill.benchmark.report import append_row, read_runs, write_table


def _config_flags(argv):
    """``--key=value`` flags that are not the benchmark's own, as a RecBole-style config dict."""
    own = {"dataset", "models", "seeds", "config_files", "output"}
    flags = {}
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            if key not in own:
                flags[key] = value
    return flags


def run_one(model, dataset, seed, config_file_list, config_dict, log_file):
    spec = {
        "model": model,
        "dataset": dataset,
        "config_file_list": config_file_list,
        "config_dict": {**config_dict, "seed": seed, "show_progress": False},
    }
    with open(log_file, "w") as log:
        process = subprocess.run(
            [sys.executable, "-m", "recbole_distill.benchmark.measure", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    lines = [line for line in process.stdout.splitlines() if line.startswith("BENCHMARK_RESULT ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark run {model} seed {seed} failed; see {log_file}")
    return json.loads(lines[-1][len("BENCHMARK_RESULT ") :])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", "-d", default="ml-100k")
    parser.add_argument("--models", default="SASRec,DLLM2RecSASRec,GRU4Rec,DLLM2RecGRU4Rec,BERT4Rec,DLLM2RecBERT4Rec")
    parser.add_argument("--seeds", default="2020")
    parser.add_argument("--config_files", default=None)
    parser.add_argument("--output", default=None, help="folder for runs.csv and results.md (default: results/<dataset>)")
    args, _ = parser.parse_known_args()
    config_files = [str(Path(f).resolve()) for f in args.config_files.split()] if args.config_files else None
    config_dict = _config_flags(sys.argv[1:])
    output = Path(args.output or Path("results") / args.dataset)
    (output / "logs").mkdir(parents=True, exist_ok=True)
    runs_file = output / "runs.csv"

    done = {(row["model"], int(row["seed"])) for row in read_runs(runs_file)}
    todo = [(m, int(s)) for s in args.seeds.split(",") for m in args.models.split(",") if (m, int(s)) not in done]
    if done:
        print(f"{len(done)} finished run(s) in {runs_file} are kept; {len(todo)} to go", flush=True)
    for model, seed in tqdm(todo, desc=set_color("Benchmark", "pink"), ncols=100):
        row = run_one(model, args.dataset, seed, config_files, config_dict, output / "logs" / f"{model}-{seed}.log")
        append_row(runs_file, row)
    write_table(read_runs(runs_file), output / "results.md")
    print(f"results: {runs_file}, {output / 'results.md'}")


if __name__ == "__main__":
    main()
