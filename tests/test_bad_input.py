"""Every bad input of README's table: a clear error from the user's entry point before any training,
and no file changed. Each case breaks one thing in a private copy of a real teacher or a real model."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from recbole_distill import run_recbole_distill
from recbole_distill.data.dataset import default_teacher_path
from recbole_distill.errors import RecBoleDistillError
from recbole_distill.model.plm import default_plm_path

from conftest import SLICE


def _rewrite(folder, name, change):
    np.save(folder / name, change(np.load(folder / name)))


def _edit_text(folder, name, old, new):
    file = folder / name
    file.write_text(file.read_text().replace(old, new, 1))


def _set(array, index, value):
    array[index] = value
    return array


def _drop_first_training_sample(teacher):
    samples = np.load(teacher / "samples.npy")
    keep = np.delete(np.arange(len(samples)), np.flatnonzero(samples[:, 3] == 0)[0])
    for name in ("samples.npy", "topk.npy", "scores.npy", "target_scores.npy"):
        _rewrite(teacher, name, lambda a: a[keep])


def _shift_rankings(teacher):
    for name in ("topk.npy", "scores.npy"):  # as if written from another ordering than samples.npy
        _rewrite(teacher, name, lambda a: np.roll(a, 1, axis=0))


def _replace_item_token(teacher):
    items = (teacher / "items.txt").read_text().splitlines()
    items[4] = "no-such-item"
    (teacher / "items.txt").write_text("\n".join(items) + "\n")


def _language_model(tmp_path, change):
    """A copy of the real MiniLM folder (weights linked, not copied) with ``change`` applied to it."""
    folder = tmp_path / "plm"
    folder.mkdir()
    for file in Path(default_plm_path()).iterdir():
        if file.is_file():
            (folder / file.name).symlink_to(file) if file.suffix == ".safetensors" else shutil.copy(file, folder)
    change(folder)
    return str(folder)


def _roberta(folder):
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))


def _small_vocabulary(folder):
    # [PAD], [unused*], [UNK], [CLS], [SEP], [MASK] and then only the first 200 ordinary tokens
    vocab = (folder / "vocab.txt").read_text().splitlines()
    (folder / "vocab.txt").write_text("\n".join(vocab[:1199]) + "\n")
    (folder / "tokenizer.json").unlink()  # the slow tokenizer reads vocab.txt


# id: (model, what breaks it: config overrides, or a function of (teacher copy, tmp_path) returning them, message)
CASES = {
    "unknown model name": ("SASRek", {}, "unknown model 'SASRek': it is neither a recbole-distill model"),
    "missing teacher folder": ("DLLM2RecSASRec", lambda t, tmp: {"teacher_path": str(tmp / "nowhere")},
                               "teacher folder '.*nowhere' does not exist"),
    "missing teacher.yaml": ("DLLM2RecSASRec", lambda t, tmp: (t / "teacher.yaml").unlink(),
                             "teacher.yaml' is missing: '.*' is not a teacher folder"),
    "teacher.yaml not a mapping": ("DLLM2RecSASRec", lambda t, tmp: (t / "teacher.yaml").write_text("- ranking\n- embedding\n"),
                                   "teacher.yaml' is malformed: it must be a mapping"),
    "teacher.yaml section not a mapping": ("DLLM2RecSASRec", lambda t, tmp: _edit_text(t, "teacher.yaml", "ranking:", "ranking: 5\nold_ranking:"),
                                           "teacher.yaml' is malformed"),
    "missing array file": ("DLLM2RecSASRec", lambda t, tmp: (t / "topk.npy").unlink(),
                           "topk.npy' is missing from the teacher folder"),
    "teacher of another dataset": ("DLLM2RecSASRec", lambda t, tmp: {"teacher_path": str(default_teacher_path("ml-100k"))},
                                   "built for other samples .* dataset 'ml-100k'"),
    "teacher of other filters": ("DLLM2RecSASRec", {"user_inter_num_interval": "[60,inf)"},
                                 "these settings differ: user_inter_num_interval"),
    "duplicate sample key": ("DLLM2RecSASRec", lambda t, tmp: _rewrite(t, "samples.npy", lambda a: _set(a, 1, a[0])),
                             "duplicate sample key"),
    "missing sample key": ("DLLM2RecSASRec", lambda t, tmp: _drop_first_training_sample(t),
                           "no row for 1 training sample"),
    "target mismatch": ("DLLM2RecSASRec", lambda t, tmp: _rewrite(t, "samples.npy", lambda a: _set(a, (3, 2), (a[3, 2] + 1) % a[:, 2].max())),
                        "disagrees .* on the target item of 1 sample"),
    "split mismatch": ("DLLM2RecSASRec", lambda t, tmp: _rewrite(t, "samples.npy", lambda a: _set(a, (0, 3), 2)),
                       "disagrees .* on the split"),
    "token not in the dataset": ("DLLM2RecSASRec", lambda t, tmp: _replace_item_token(t),
                                 "not item_ids of dataset .* \\(first: 'no-such-item'\\)"),
    "teacher_k larger than stored": ("DLLM2RecSASRec", {"teacher_k": 30}, "'teacher_k' = 30: expected at most 20"),
    "k in teacher.yaml differs from the arrays": ("DLLM2RecSASRec", lambda t, tmp: _edit_text(t, "teacher.yaml", "k: 20", "k: 25"),
                                                 "teacher.yaml says k = 25 but topk.npy has 20 columns"),
    "arrays of different builds": ("DLLM2RecSASRec", lambda t, tmp: _rewrite(t, "scores.npy", lambda a: a[1:]),
                                   "disagree with topk.npy .* on their shapes: scores.npy"),
    "embedding dim mismatch": ("DLLM2RecSASRec", lambda t, tmp: _edit_text(t, "teacher.yaml", "dim: 384", "dim: 256"),
                               "item_embeddings.npy .* has shape \\(\\d+, 384\\); expected \\(\\d+, 256\\)"),
    "NaN score": ("DLLM2RecSASRec", lambda t, tmp: _rewrite(t, "scores.npy", lambda a: _set(a, (2, 1), np.nan)),
                  "scores.npy .* holds 1 NaN or infinite score"),
    "infinite target score": ("DLLM2RecSASRec", lambda t, tmp: _rewrite(t, "target_scores.npy", lambda a: _set(a, 7, np.inf)),
                              "target_scores.npy .* holds 1 NaN or infinite value\\(s\\) \\(first at row 7\\)"),
    "NaN embedding": ("DLLM2RecSASRec", lambda t, tmp: _rewrite(t, "item_embeddings.npy", lambda a: _set(a, (5, 0), np.nan)),
                      "item_embeddings.npy .* NaN or infinite values in 1 row"),
    "truncated .npy": ("DLLM2RecSASRec", lambda t, tmp: (t / "topk.npy").write_bytes((t / "topk.npy").read_bytes()[:200]),
                       "topk.npy' is not a readable .npy file .* truncated or corrupt"),
    "corrupt .npy": ("DLLM2RecSASRec", lambda t, tmp: (t / "scores.npy").write_bytes(b"not an array at all"),
                     "scores.npy' is not a .npy file \\(no .npy header\\); it is corrupt"),
    "rankings shifted by one row": ("DLLM2RecSASRec", lambda t, tmp: _shift_rankings(t),
                                    "rankings in .* do not belong to their rows: score consistency"),
    "negative lambda_d": ("DLLM2RecSASRec", {"rd_weight": -0.5}, "'rd_weight' = -0.5: expected a number >= 0 \\(lambda_d"),
    "infinite lambda_d": ("DLLM2RecSASRec", {"rd_weight": float("inf")}, "'rd_weight' = inf: expected a number >= 0"),
    "NaN temperature": ("MiniBERT", {"kd_temperature": float("nan")}, "'kd_temperature' = nan: expected a number > 0"),
    "non-numeric lambda_d": ("DLLM2RecSASRec", {"rd_weight": "much"}, "'rd_weight' = 'much': expected a number >= 0"),
    "negative gamma": ("DLLM2RecSASRec", {"rd_gammas": [0.3, -0.5, 0.1]}, "'rd_gammas' = \\[0.3, -0.5, 0.1\\]: expected three numbers >= 0"),
    "non-numeric gamma": ("DLLM2RecSASRec", {"rd_gammas": [0.3, "high", 0.1]}, "'rd_gammas' = \\[0.3, 'high', 0.1\\]"),
    "negative w_ed": ("DLLM2RecGRU4Rec", {"ed_weight": -1}, "'ed_weight' = -1: expected a number >= 0 \\(w_ed"),
    "non-numeric w_ed": ("DLLM2RecBERT4Rec", {"ed_weight": "0.3x"}, "'ed_weight' = '0.3x'"),
    "temperature 0": ("MiniBERT", {"kd_temperature": 0}, "'kd_temperature' = 0: expected a number > 0"),
    "negative temperature": ("MiniBERT", {"kd_temperature": -2.0}, "'kd_temperature' = -2.0: expected a number > 0"),
    "alpha above 1": ("MiniBERT", {"kd_alpha": 1.5}, "'kd_alpha' = 1.5: expected a number in \\[0, 1\\]"),
    "alpha below 0": ("MiniBERT", {"kd_alpha": -0.1}, "'kd_alpha' = -0.1: expected a number in \\[0, 1\\]"),
    "missing language model folder": ("PreBERT", lambda t, tmp: {"plm_path": str(tmp / "no-model")},
                                      "no language model at '.*no-model': the folder needs a config.json"),
    "language model not a BERT": ("PreBERT", lambda t, tmp: {"plm_path": _language_model(tmp, _roberta)},
                                  "is a 'roberta' model; this needs a BERT encoder"),
    "vocabulary smaller than the items": ("PreBERT", lambda t, tmp: {"plm_path": _language_model(tmp, _small_vocabulary)},
                                          "vocabulary has \\d+ ordinary tokens, fewer than the 1445 items"),
}


def _snapshot(*folders):
    return {
        file: hashlib.sha256(file.read_bytes()).hexdigest()
        for folder in folders
        for file in Path(folder).rglob("*")
        if file.is_file()
    }


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_before_training_and_changes_nothing(case, base_config, teacher_copy, tmp_path):
    model, breaks, message = CASES[case]
    overrides = breaks(teacher_copy, tmp_path) if callable(breaks) else breaks
    overrides = overrides if isinstance(overrides, dict) else {}  # a function that damages files returns nothing
    config = {**base_config, "teacher_path": str(teacher_copy), "checkpoint_dir": str(tmp_path / "saved"), **overrides}
    watched = (teacher_copy, base_config["data_path"], default_teacher_path("ml-100k"))
    before = _snapshot(*watched)
    with pytest.raises(RecBoleDistillError, match=message):
        run_recbole_distill(model=model, dataset=SLICE, config_dict=config)
    assert _snapshot(*watched) == before
    assert not (tmp_path / "saved").exists() or not list((tmp_path / "saved").iterdir()), "a checkpoint was written"
