"""A wheel built from the checkout, installed into a fresh virtual environment, runs a student from another
directory: its defaults, properties and the shipped ml-100k teacher travel inside it."""

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LEFTOVERS = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".*", "tests", "results", "saved", "log")


def _skip(folder, names):
    """What the wheel is not built from: the build's leftovers, and the ML-1M files a wheel does not carry
    (the 172 MB teacher, the converted data), so that the test copies 20 MB rather than 200."""
    skipped = set(LEFTOVERS(folder, names))
    if Path(folder).name == "ml-1m":
        skipped |= {name for name in names if name == "teacher" or name.startswith("ml-1m.")}
    return skipped

RUN = """
import sys
from pathlib import Path
import recbole_distill
from recbole_distill import run_recbole_distill
from recbole_distill.errors import RecBoleDistillError
from recbole_distill.paths import DATASET_DIR, PROPERTIES_DIR

assert Path(recbole_distill.__file__).is_relative_to(sys.prefix), recbole_distill.__file__
assert (PROPERTIES_DIR / "model" / "DLLM2Rec.yaml").is_file() and (DATASET_DIR / "ml-100k" / "teacher").is_dir()
# full ml-100k (the data set with a shipped teacher), shrunk to one epoch of 24 large batches
tiny = {"epochs": 1, "n_layers": 1, "n_heads": 1, "hidden_size": 16, "inner_size": 32, "MAX_ITEM_LIST_LENGTH": 5,
        "train_batch_size": 4096, "eval_batch_size": 4096, "show_progress": False, "checkpoint_dir": "saved"}
try:
    run_recbole_distill(model="DLLM2RecSASRec", dataset="ml-100k", config_dict={**tiny, "teacher_path": "no-teacher"})
except RecBoleDistillError as e:
    print("refused:", e)
result = run_recbole_distill(model="DLLM2RecSASRec", dataset="ml-100k", config_dict=tiny)
print("ndcg@10", result["test_result"]["ndcg@10"])
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    source = tmp_path_factory.mktemp("source") / "recbole-distill"
    shutil.copytree(REPO, source, ignore=_skip)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(source)], check=True, capture_output=True)
    [file] = out.glob("recbole_distill-*.whl")
    return file


def test_the_wheel_carries_properties_and_the_ml100k_teacher_not_the_ml1m_one(wheel):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"recbole_distill/properties/overall.yaml", "recbole_distill/properties/model/DLLM2Rec.yaml",
            "recbole_distill/properties/dataset/ml-100k.yaml", "recbole_distill/properties/teacher/generative.yaml",
            "recbole_distill/dataset/ml-100k/teacher/topk.npy", "recbole_distill/dataset/ml-1m/item_text/items.txt",
            "recbole_distill/__main__.py"} <= names
    assert not any(name.startswith("recbole_distill/dataset/ml-1m/teacher/") for name in names)


def test_a_wheel_install_runs_a_student_from_another_directory(wheel, tmp_path):
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies come from this interpreter's packages; recbole_distill only from the wheel
    Path(site, "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([python, "-c", RUN], cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert float(next(line for line in lines if line.startswith("ndcg@10")).split()[1]) > 0
    assert any(line.startswith("refused:") and "teacher folder 'no-teacher' does not exist" in line
               and "'teacher_path'" in line for line in lines), result.stdout[-2000:]
    assert list((elsewhere / "saved").glob("DLLM2RecSASRec-*.pth"))

    # the training command of a wheel install (run_recbole_distill.py lives in the checkout only)
    command = subprocess.run([python, "-m", "recbole_distill", "--nproc=0"], cwd=elsewhere, capture_output=True, text=True)
    assert command.returncode == 1 and "'nproc' = 0: expected a whole number >= 1" in command.stderr
