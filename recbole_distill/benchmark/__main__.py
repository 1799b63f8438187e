r"""Benchmark: RecBole baselines, distilled students and the teacher under one protocol, one process per run.

    python -m recbole_distill.benchmark --dataset=ml-100k --models=SASRec,DLLM2RecSASRec,TeacherRanking \
        --seeds=2020,2021,2022 --config_files=results/protocol.yaml --output=results/ml-100k

Every (model, seed) is trained with early stopping on validation, tested with RecBole's full-ranking
evaluator, and timed; the row goes into ``<output>/runs.csv`` and the per-user test values of the selecting
metric (``valid_metric``) into ``<output>/users/`` as soon as it finishes, so an interrupted benchmark
resumes where it stopped (finished runs are skipped). ``<output>/results.md`` gets the table (mean +- std
over seeds; each distilled student's gain over its plain twin and share of the teacher's lead, with 95 %
paired bootstrap intervals over test users), ``quality.png`` and ``quality_vs_inference.png`` the plots.
``--variants=properties/benchmark/ablations.yaml`` runs each plugin student once per named variant (a set of
config values: an ablation or a sweep point); RecBole's own models run once.
Other ``--key=value`` flags reach every run's config, as in RecBole.
"""

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from recbole.utils import set_color
from tqdm import tqdm

from recbole_distill.benchmark.report import append_row, plain_twin, read_runs, write_per_user, write_plots, write_table
from recbole_distill.errors import ConfigError


def _config_flags(argv):
    """``--key=value`` flags that are not the benchmark's own, as a RecBole-style config dict."""
    own = {"dataset", "models", "seeds", "config_files", "output", "variants"}
    flags = {}
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            if key not in own:
                flags[key] = value
    return flags


def read_variants(file):
    """``{name: config values}`` from a variants YAML file; ``{"": {}}`` (the defaults) without one."""
    if not file:
        return {"": {}}
    with open(file, encoding="utf-8") as f:
        variants = yaml.safe_load(f)
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise ConfigError("variants", file, "a YAML file mapping each variant name to a mapping of config keys")
    return {str(name): values for name, values in variants.items()}


def plan(models, seeds, variants):
    """(model, variant, seed) of every run: each plugin student once per variant, other models once."""
    runs = []
    for seed in seeds:
        for model in models:
            for variant in (variants if plain_twin(model) else {"": {}}):
                runs.append((model, variant, seed))
    return runs


def run_one(model, dataset, seed, config_file_list, config_dict, log_file, variant="", variant_config=None):
    spec = {
        "model": model,
        "dataset": dataset,
        "config_file_list": config_file_list,
        "config_dict": {**config_dict, **(variant_config or {}), "seed": seed, "show_progress": False},
    }
    with open(log_file, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "recbole_distill.benchmark.measure", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            stdout, _ = process.communicate()
        finally:  # stopped (Ctrl-C, SIGTERM): stop the run too, so no orphan competes for the CPU
            if process.poll() is None:
                process.kill()
                process.wait()
    lines = [line for line in stdout.splitlines() if line.startswith("BENCHMARK_RESULT ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark run {model}{f'[{variant}]' if variant else ''} seed {seed} failed; see {log_file}")
    return {"variant": variant, **json.loads(lines[-1][len("BENCHMARK_RESULT ") :])}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", "-d", default="ml-100k")
    parser.add_argument("--models", default="SASRec,DLLM2RecSASRec,GRU4Rec,DLLM2RecGRU4Rec,BERT4Rec,DLLM2RecBERT4Rec")
    parser.add_argument("--seeds", default="2020")
    parser.add_argument("--config_files", default=None)
    parser.add_argument("--output", default=None, help="folder for runs.csv and results.md (default: results/<dataset>)")
    parser.add_argument("--variants", default=None, help="YAML file of named config variants for the plugin students")
    args, _ = parser.parse_known_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("benchmark stopped; finished runs are kept, a rerun resumes"))
    config_files = [str(Path(f).resolve()) for f in args.config_files.split()] if args.config_files else None
    config_dict = _config_flags(sys.argv[1:])
    output = Path(args.output or Path("results") / args.dataset)
    (output / "logs").mkdir(parents=True, exist_ok=True)
    runs_file = output / "runs.csv"

    variants = read_variants(args.variants)
    done = {(row["model"], row.get("variant") or "", int(row["seed"])) for row in read_runs(runs_file)}
    runs = plan(args.models.split(","), [int(s) for s in args.seeds.split(",")], variants)
    todo = [run for run in runs if run not in done]
    if done:
        print(f"{len(done)} finished run(s) in {runs_file} are kept; {len(todo)} to go", flush=True)
    for model, variant, seed in tqdm(todo, desc=set_color("Benchmark", "pink"), ncols=100):
        log_file = output / "logs" / f"{model}{f'[{variant}]' if variant else ''}-{seed}.log"
        row = run_one(model, args.dataset, seed, config_files, config_dict, log_file, variant, variants.get(variant))
        write_per_user(output, row, row.pop("per_user"))
        append_row(runs_file, row)
    rows = read_runs(runs_file)
    write_table(rows, output / "results.md")
    write_plots(rows, output)
    print(f"results: {runs_file}, {output / 'results.md'}, {output / 'quality.png'}, {output / 'quality_vs_inference.png'}")


if __name__ == "__main__":
    main()
