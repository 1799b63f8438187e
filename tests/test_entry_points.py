"""Every command-line entry point: bad paths, bad values, unusable checkpoints and malformed files end in one
line ``recbole-distill: error: ...`` and exit status 1, with no traceback and nothing written."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recbole_distill import run_recbole_distill

from conftest import SLICE

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checkpoints(base_config, tmp_path_factory):
    """A sequential model's checkpoint, a general model's, and a truncated copy of the first."""
    folder = tmp_path_factory.mktemp("entry")
    for model in ("SASRec", "BPR"):
        run_recbole_distill(model=model, dataset=SLICE, config_dict={**base_config, "checkpoint_dir": str(folder)})
    sasrec = next(folder.glob("SASRec-*.pth"))
    (folder / "truncated.pth").write_bytes(sasrec.read_bytes()[:1000])
    (folder / "a-file").write_text("not a folder")
    return {"sasrec": sasrec, "bpr": next(folder.glob("BPR-*.pth")), "truncated": folder / "truncated.pth",
            "file": folder / "a-file", "missing": folder / "missing.pth"}


def _data_flags(config):
    """The slice's flags (where the data are, how small the models are), without its checkpoint_dir."""
    return [f"--{key}={json.dumps(value) if isinstance(value, dict) else value}" for key, value in config.items()
            if key != "checkpoint_dir"]


# id: (command after `python`, message); {name} is replaced by the checkpoints fixture's paths
CASES = {
    "training: --nproc=0": (["run_recbole_distill.py", "--nproc=0"], "config key 'nproc' = 0: expected a whole number >= 1"),
    "training: --nproc=-1": (["run_recbole_distill.py", "--nproc=-1"], "config key 'nproc' = -1"),
    "training: --world_size below --nproc": (["run_recbole_distill.py", "--nproc=2", "--world_size=1"], "'world_size' = 1"),
    "training: checkpoint_dir is a file": (["run_recbole_distill.py", "--model=SASRec", f"--dataset={SLICE}",
                                            "--checkpoint_dir={file}", "<data>"], "'checkpoint_dir' = .*this path is a file"),
    "training: unreadable config file": (["run_recbole_distill.py", "--config_files={missing}"], "cannot read the config file"),
    "training: missing resume file": (["run_recbole_distill.py", "--resume={missing}"], "resume file .* does not exist"),
    "teacher export: missing checkpoint": (["-m", "recbole_distill.teacher.export", "--model_file={missing}"],
                                           "checkpoint '.*missing.pth' does not exist"),
    "teacher export: truncated checkpoint": (["-m", "recbole_distill.teacher.export", "--model_file={truncated}"],
                                             "cannot read checkpoint .* truncated, corrupt or not a torch file"),
    "teacher export: not a sequential model": (["-m", "recbole_distill.teacher.export", "--model_file={bpr}"],
                                               "holds a BPR \\(general model\\); teacher export needs a sequential"),
    "teacher export: --topk=0": (["-m", "recbole_distill.teacher.export", "--model_file={sasrec}", "--topk=0"],
                                 "argument --topk: '0' must be >= 1"),
    "teacher export: no --model_file": (["-m", "recbole_distill.teacher.export"], "the following arguments are required"),
    "serving export: --n=0": (["-m", "recbole_distill.serving.export", "--model_file={sasrec}", "--output={out}", "--n=0"],
                              "argument --n: '0' must be >= 1"),
    "serving export: unknown format": (["-m", "recbole_distill.serving.export", "--model_file={sasrec}", "--output={out}",
                                        "--formats=pdf"], "unknown export format\\(s\\) \\['pdf'\\]"),
    "serving export: not a sequential model": (["-m", "recbole_distill.serving.export", "--model_file={bpr}",
                                                "--output={out}"], "serving export needs a sequential recommender"),
    "serving export: checkpoint is a folder": (["-m", "recbole_distill.serving.export", "--model_file={out}",
                                                "--output={out}"], "does not exist \\(or is not a file\\)"),
    "generative builder: --max_samples=-3": (["-m", "recbole_distill.teacher.generative", "--max_samples=-3"],
                                             "argument --max_samples: '-3' must be >= 1"),
    "official import: --min_match=nan": (["-m", "recbole_distill.teacher.official", "--official_path=x", "--train_data=x",
                                          "--item_map=x", "--min_match=nan"], "'nan' is not a finite number"),
    "text embeddings: --batch_size=0": (["-m", "recbole_distill.teacher.text_embedding", "--batch_size=0"],
                                        "argument --batch_size: '0' must be >= 1"),
    "target-only teacher: missing source": (["-m", "recbole_distill.teacher.target_ranking", "--teacher_path={missing}",
                                             "--output={out}"], "teacher folder .*missing.pth' does not exist"),
    "benchmark: unknown model": (["-m", "recbole_distill.benchmark", "--models=SASRek", "--output={out}"],
                                 "unknown model 'SASRek'"),
    "benchmark: bad seeds": (["-m", "recbole_distill.benchmark", "--seeds=1,two", "--output={out}"],
                             "'1,two' is not a comma-separated list of whole numbers"),
    "benchmark: a run that fails": (["-m", "recbole_distill.benchmark", "--models=DLLM2RecSASRec", f"--dataset={SLICE}",
                                     "--output={out}", "--rd_weight=-1", "<data>"],
                                    "benchmark run DLLM2RecSASRec-2020 failed: config key 'rd_weight' = -1"),
    "tuning: unknown search": (["run_hyper_distill.py", "--algo=grid"], "argument --algo: invalid choice: 'grid'"),
    "tuning: missing search space": (["run_hyper_distill.py", f"--dataset={SLICE}", "--params_file={missing}", "<data>"],
                                     "'params_file' = .*expected a search-space file"),
    "latency: missing checkpoint": (["-m", "recbole_distill.benchmark.latency", "--model_file={missing}"], "does not exist"),
    "ML-1M converter: missing source": (["-m", "recbole_distill.data.ml1m", "--source={missing}", "--output={out}"],
                                        "missing.pth"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_ends_in_one_line_and_exit_status_1(case, checkpoints, base_config, tmp_path):
    command, message = CASES[case]
    paths = {name: str(path) for name, path in checkpoints.items()} | {"out": str(tmp_path / "out")}
    (tmp_path / "out").mkdir()
    args = []
    for arg in command:
        args += _data_flags(base_config) if arg == "<data>" else [arg.format(**paths)]
    script = [str(REPO / args[0])] if args[0].endswith(".py") else args[:2]
    rest = args[1:] if args[0].endswith(".py") else args[2:]
    watched = [checkpoints["sasrec"], checkpoints["bpr"], checkpoints["file"]]
    before = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in watched}

    out = subprocess.run([sys.executable, *script, *rest], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    errors = [line for line in out.stderr.splitlines() if line.startswith("recbole-distill: error: ")]
    assert out.returncode == 1, out.stderr[-2000:]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert re.search(message, errors[0]), errors[0]
    assert {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in watched} == before
    assert not [f for f in (tmp_path / "out").rglob("*") if f.is_file() and f.suffix not in (".log",)]
