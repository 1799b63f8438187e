r"""Benchmark: RecBole baselines, distilled students and the teacher under one protocol, one process per run.

    python -m recbole_distill.benchmark --dataset=ml-100k --models=SASRec,DLLM2RecSASRec,TeacherRanking \
        --seeds=2020,2021,2022 --config_files=results/protocol.yaml --output=results/ml-100k

Every (model, seed) is trained with early stopping on validation, tested with RecBole's full-ranking
evaluator, and timed; the row goes into ``<output>/runs.csv`` and the per-user test values of the selecting
metric (``valid_metric``) into ``<output>/users/`` as soon as it finishes, so an interrupted benchmark
resumes where it stopped: finished runs are skipped, and a run stopped mid-way continues from the start of the
epoch it was in (each run keeps its checkpoints and resume state in ``<output>/checkpoints/<run>/``, or under
``--checkpoint_dir``; a long table can span sessions when that folder travels with it). ``<output>/results.md`` gets the table (mean +- std
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
from recbole_distill.cli import PREFIX, ArgumentParser, run_command
from recbole_distill.errors import ConfigError, RecBoleDistillError
from recbole_distill.utils import get_model


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


def seed_list(text):
    try:
        return [int(seed) for seed in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None


def read_variants(file):
    """``{name: config values}`` from a variants YAML file; ``{"": {}}`` (the defaults) without one."""
    if not file:
        return {"": {}}
    with open(file, encoding="utf-8") as f:
        try:
            variants = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError("variants", file, f"a readable YAML file ({str(e).splitlines()[0]})") from None
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


def run_name(model, variant, seed):
    return f"{model}{f'[{variant}]' if variant else ''}-{seed}"


def run_one(model, dataset, seed, config_file_list, config_dict, log_file, checkpoint_dir, variant="", variant_config=None):
    """Train and measure one run in its own process; a run interrupted earlier continues from the resume
    state it left in ``checkpoint_dir`` (its own folder) instead of starting again."""
    spec = {
        "model": model,
        "dataset": dataset,
        "config_file_list": config_file_list,
        "config_dict": {
            **config_dict,
            **(variant_config or {}),
            "seed": seed,
            "show_progress": False,
            "checkpoint_dir": str(checkpoint_dir),
        },
    }
    resume_files = sorted(Path(checkpoint_dir).glob("*-resume.pth"))
    if resume_files:
        spec["resume_file"] = str(resume_files[-1])
    with open(log_file, "a" if resume_files else "w") as log:
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
        log_lines = Path(log_file).read_text(errors="replace").strip().splitlines()
        last = log_lines[-1].removeprefix(PREFIX) if log_lines else "no output"
        raise RecBoleDistillError(f"benchmark run {run_name(model, variant, seed)} failed: {last} (log: {log_file})")
    return {"variant": variant, **json.loads(lines[-1][len("BENCHMARK_RESULT ") :])}


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--dataset", "-d", default="ml-100k")
    parser.add_argument("--models", default="SASRec,DLLM2RecSASRec,GRU4Rec,DLLM2RecGRU4Rec,BERT4Rec,DLLM2RecBERT4Rec")
    parser.add_argument("--seeds", type=seed_list, default="2020", help="comma-separated whole numbers")
    parser.add_argument("--config_files", default=None)
    parser.add_argument("--output", default=None, help="folder for runs.csv and results.md (default: results/<dataset>)")
    parser.add_argument("--variants", default=None, help="YAML file of named config variants for the plugin students")
    args, _ = parser.parse_known_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("benchmark stopped; finished runs are kept, a rerun resumes"))
    config_files = [str(Path(f).resolve()) for f in args.config_files.split()] if args.config_files else None
    config_dict = _config_flags(sys.argv[1:])
    models = args.models.split(",")
    for model in models:
        get_model(model)  # an unknown name is refused before anything is written
    variants = read_variants(args.variants)
    output = Path(args.output or Path("results") / args.dataset)
    (output / "logs").mkdir(parents=True, exist_ok=True)
    runs_file = output / "runs.csv"

    done = {(row["model"], row.get("variant") or "", int(row["seed"])) for row in read_runs(runs_file)}
    runs = plan(models, args.seeds, variants)
    todo = [run for run in runs if run not in done]
    if done:
        print(f"{len(done)} finished run(s) in {runs_file} are kept; {len(todo)} to go", flush=True)
    checkpoints = Path(config_dict.pop("checkpoint_dir", output / "checkpoints"))
    for model, variant, seed in tqdm(todo, desc=set_color("Benchmark", "pink"), ncols=100):
        name = run_name(model, variant, seed)
        log_file = output / "logs" / f"{name}.log"
        row = run_one(
            model, args.dataset, seed, config_files, config_dict, log_file, checkpoints / name, variant, variants.get(variant)
        )
        write_per_user(output, row, row.pop("per_user"))
        append_row(runs_file, row)
    rows = read_runs(runs_file)
    write_table(rows, output / "results.md")
    write_plots(rows, output)
    print(f"results: {runs_file}, {output / 'results.md'}, {output / 'quality.png'}, {output / 'quality_vs_inference.png'}")


if __name__ == "__main__":
    run_command(main)
