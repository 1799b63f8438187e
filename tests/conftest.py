"""Shared fixtures: a small slice of the real ml-100k and a real teacher built on it.

The slice keeps the first users of RecBole's own ml-100k files (with their item text), so every test
runs the real pipeline (RecBole data flow, a trained SASRec teacher exported by the real builder, the
real MiniLM encoder) in seconds.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import recbole
import torch

import recbole_distill  # noqa: F401  (applies the compatibility fixes)

ML100K = Path(recbole.__file__).parent / "dataset_example" / "ml-100k"
SLICE = "ml-100k-slice"
SLICE_USERS = 80

# Small and fast: what the tests shrink, never the defaults users get.
TINY = {
    "MAX_ITEM_LIST_LENGTH": 10,
    "n_layers": 1,
    "n_heads": 1,
    "hidden_size": 16,
    "inner_size": 32,
    "embedding_size": 16,
    "train_batch_size": 256,
    "eval_batch_size": 256,
    "epochs": 1,
    "show_progress": False,
    # what RecBole's ml-100k.yaml and the plugin's dataset/ml-100k.yaml set for the full data set
    "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
    "item_text_template": "{movie_title} ({release_year}), genres: {class}",
}


@pytest.fixture(scope="session", autouse=True)
def _isolate(tmp_path_factory):
    """RecBole reads --key=value flags from sys.argv and writes logs into the working directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", sys.argv[:1])
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(scope="session")
def data_path(tmp_path_factory):
    """``<data_path>/ml-100k-slice/``: the interactions of the first users of ml-100k, and all items."""
    root = tmp_path_factory.mktemp("data")
    folder = root / SLICE
    folder.mkdir()
    inter = pd.read_csv(ML100K / "ml-100k.inter", sep="\t", dtype=str)
    users = inter["user_id:token"].drop_duplicates().iloc[:SLICE_USERS]
    inter[inter["user_id:token"].isin(users)].to_csv(folder / f"{SLICE}.inter", sep="\t", index=False)
    shutil.copy(ML100K / "ml-100k.item", folder / f"{SLICE}.item")
    return str(root)


@pytest.fixture(scope="session")
def base_config(data_path):
    return {**TINY, "data_path": data_path, "checkpoint_dir": str(Path(data_path) / "saved")}


@pytest.fixture(scope="session")
def teacher_dir(base_config, tmp_path_factory):
    """A real teacher for the slice: a SASRec trained one epoch, exported, plus MiniLM item embeddings."""
    from recbole_distill import Config, run_recbole_distill
    from recbole_distill.teacher.export import export_teacher
    from recbole_distill.teacher.text_embedding import build_text_embeddings

    folder = tmp_path_factory.mktemp("teacher") / "teacher"
    config = {**base_config, "checkpoint_dir": str(folder.parent / "saved")}
    run_recbole_distill(model="SASRec", dataset=SLICE, config_dict=config)
    checkpoint = next((folder.parent / "saved").glob("SASRec-*.pth"))
    export_teacher(checkpoint, folder, k=20, show_progress=False)
    build_text_embeddings(Config(model="SASRec", dataset=SLICE, config_dict=config), folder, show_progress=False)
    return folder


FEW_USERS = "ml-100k-few"
LLM_SMALL = {"llm_batch_size": 8, "llm_max_new_tokens": 12, "llm_history_length": 5}


@pytest.fixture(scope="session")
def few_users(tmp_path_factory):
    """Three users with ml-100k's fewest interactions (20 each): 57 samples, 51 of them for training."""
    root = tmp_path_factory.mktemp("few")
    (root / FEW_USERS).mkdir()
    inter = pd.read_csv(ML100K / "ml-100k.inter", sep="\t", dtype=str)
    counts = inter["user_id:token"].value_counts()
    users = sorted(counts[counts == counts.min()].index)[:3]
    inter[inter["user_id:token"].isin(users)].to_csv(root / FEW_USERS / f"{FEW_USERS}.inter", sep="\t", index=False)
    shutil.copy(ML100K / "ml-100k.item", root / FEW_USERS / f"{FEW_USERS}.item")
    return {**TINY, "data_path": str(root), "checkpoint_dir": str(root / "saved"), **LLM_SMALL,
            "llm_item_template": "{movie_title} ({release_year})"}


@pytest.fixture
def teacher_copy(teacher_dir, tmp_path):
    """A private copy of the teacher that a test may damage."""
    return Path(shutil.copytree(teacher_dir, tmp_path / "teacher"))


def checkpoint_top_n(model_file, n):
    """The checkpoint's own top-N (``full_sort_predict``, padding excluded) for every test user."""
    from recbole_distill import load_data_and_model

    _, model, dataset, _, _, test_data = load_data_and_model(model_file)
    feat = test_data._dataset.inter_feat
    with torch.no_grad():
        scores = model.eval().full_sort_predict(feat).view(len(feat), -1)
    scores[:, 0] = -np.inf
    values, ids = scores.topk(n, dim=1)
    return feat[dataset.item_id_list_field].numpy(), feat[dataset.item_list_length_field].numpy(), values.numpy(), ids.numpy()
