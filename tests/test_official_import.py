"""The importer of the official DLLM2Rec files: a round trip through the official format, and refusals.

The official files are written here from the session's real SASRec teacher, as the official pipeline
lays them out: rows in their own (shuffled) order, items under their own ids, histories of the last 10
items right-padded with n_items.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from recbole_distill import Config, create_dataset, run_recbole_distill
from recbole_distill.data.artifacts import TeacherArtifacts
from recbole_distill.data.dataset import TARGET_POS, TEACHER_SCORE, TEACHER_TOPK, KeyedSequentialDataset
from recbole_distill.errors import TeacherArtifactError
from recbole_distill.teacher.official import import_official

from conftest import SLICE

SEQ_SIZE, TOP_N = 10, 10


@pytest.fixture(scope="module")
def official(teacher_dir, base_config, tmp_path_factory):
    """``(folder, train_data.df, item map, {(user id, target position): (topk tokens, distances)})``."""
    config = Config(model="SASRec", dataset=SLICE, config_dict=base_config)
    dataset = KeyedSequentialDataset(config)
    train = dataset.build()[0].inter_feat
    teacher = TeacherArtifacts(teacher_dir)
    _, samples, topk, scores, _ = teacher.ranking()
    embeddings = teacher.item_embeddings()
    row_of = {(u + 1, p): r for r, (u, p) in enumerate(samples[:, :2].tolist())}  # exported in RecBole's id order

    rng = np.random.default_rng(0)
    n_items = len(teacher.items)
    official_id = rng.permutation(n_items)  # teacher item index -> official id
    index_of_token = {token: i for i, token in enumerate(teacher.items)}
    to_official = lambda ids: official_id[index_of_token[dataset.id2token(dataset.iid_field, ids)]]  # noqa: E731

    rows, ranks, distances, expected = [], [], [], {}
    for user, pos, history, length, target in zip(
        train[dataset.uid_field].tolist(), train[TARGET_POS].tolist(), train[dataset.item_id_list_field].numpy(),
        train[dataset.item_list_length_field].tolist(), train[dataset.iid_field].tolist(),
    ):
        recent = history[max(0, length - SEQ_SIZE) : length]
        seq = [int(to_official(i)) for i in recent] + [n_items] * (SEQ_SIZE - len(recent))
        r = row_of[(user, pos)]
        rows.append({"seq": seq, "len_seq": len(recent), "next": int(to_official(target))})
        ranks.append(official_id[topk[r, :TOP_N]])
        distances.append(-scores[r, :TOP_N])  # logits, descending -> distances, ascending
        expected[(user, pos)] = (teacher.items[topk[r, :TOP_N]], -scores[r, :TOP_N])
    order = rng.permutation(len(rows))

    folder = tmp_path_factory.mktemp("official")
    pd.DataFrame([rows[i] for i in order]).to_pickle(folder / "train_data.df")
    np.savetxt(folder / "myrank_train.txt", np.array(ranks)[order], fmt="%d")
    np.savetxt(folder / "confidence_train.txt", np.array(distances)[order], fmt="%.7g")
    table = torch.zeros(n_items, embeddings.shape[1], dtype=torch.float16)
    table[torch.from_numpy(official_id)] = torch.from_numpy(np.array(embeddings)).half()
    torch.save(table, folder / "all_embeddings.pt")
    (folder / "item_map.tsv").write_text("".join(f"{official_id[i]}\t{t}\n" for i, t in enumerate(teacher.items)))
    # the same files with the rows grouped by user, in time order
    (folder / "grouped").mkdir()
    pd.DataFrame(rows).to_pickle(folder / "grouped" / "train_data.df")
    np.savetxt(folder / "grouped" / "myrank_train.txt", np.array(ranks), fmt="%d")
    np.savetxt(folder / "grouped" / "confidence_train.txt", np.array(distances), fmt="%.7g")
    for name in ("all_embeddings.pt", "item_map.tsv"):
        (folder / "grouped" / name).write_bytes((folder / name).read_bytes())
    return folder, expected


def _import(base_config, folder, out, **kwargs):
    config = Config(model="SASRec", dataset=SLICE, config_dict=base_config)
    files = {"train_data": folder / "train_data.df", "item_map": folder / "item_map.tsv"}
    files.update({key: kwargs.pop(key) for key in list(kwargs) if key in files})
    return import_official(config, folder, teacher_path=out, **files, **kwargs)


def test_official_files_round_trip_and_teach_a_student(official, teacher_dir, base_config, tmp_path):
    folder, expected = official
    report = _import(base_config, folder, tmp_path / "teacher")
    assert report["official_rows"] == report["official_rows_matched"] == report["train_samples"] == report["train_samples_matched"]
    # rows whose history and target repeat an earlier row's (other users) teach through the first one
    assert 0 < report["official_rows_repeating_an_earlier_key"] < 0.01 * report["official_rows"]
    assert report["own_target_in_topn"] >= 1.5 * report["random_row_target_in_topn"] > 0

    dataset = create_dataset(Config(model="DLLM2RecSASRec", dataset=SLICE, config_dict={
        **base_config, "teacher_path": str(tmp_path / "teacher"), "teacher_k": TOP_N}))
    train = dataset.build()[0].inter_feat
    same = 0
    for user, pos, topk, score in zip(train[dataset.uid_field].tolist(), train[TARGET_POS].tolist(),
                                      train[TEACHER_TOPK].numpy(), train[TEACHER_SCORE].numpy()):
        tokens, distances = expected[(user, pos)]
        same += list(dataset.id2token(dataset.iid_field, topk)) == list(tokens) and np.allclose(score, distances, rtol=1e-5)
    # a row teaches every sample with its history and target; only samples sharing one can differ
    assert same >= 0.99 * len(train)
    # embeddings came back to the right items, in the official fp16
    imported = TeacherArtifacts(tmp_path / "teacher").item_embeddings()
    assert imported.dtype == np.float16
    assert np.array_equal(imported, np.asarray(TeacherArtifacts(teacher_dir).item_embeddings()).astype(np.float16))

    result = run_recbole_distill(model="DLLM2RecSASRec", dataset=SLICE, config_dict={
        **base_config, "teacher_path": str(tmp_path / "teacher"), "teacher_k": TOP_N})
    assert 0 <= result["test_result"]["ndcg@10"] <= 1


def test_shifted_rows_are_refused(official, base_config, tmp_path):
    folder, _ = official
    for name in ("myrank_train.txt", "confidence_train.txt"):
        np.savetxt(tmp_path / name, np.roll(np.loadtxt(folder / name), 1, axis=0), fmt="%.7g")
    (tmp_path / "all_embeddings.pt").write_bytes((folder / "all_embeddings.pt").read_bytes())
    with pytest.raises(TeacherArtifactError, match="do not line up with train_data.df's rows"):
        _import(base_config, tmp_path, tmp_path / "teacher", train_data=folder / "train_data.df", item_map=folder / "item_map.tsv")
    assert not (tmp_path / "teacher").exists()


def test_rows_grouped_by_user_are_accepted(official, base_config, tmp_path):
    folder, _ = official
    shuffled = _import(base_config, folder, tmp_path / "shuffled")
    grouped = _import(base_config, folder / "grouped", tmp_path / "grouped")
    assert grouped["own_target_in_topn"] == shuffled["own_target_in_topn"]
    for name in ("topk.npy", "scores.npy", "samples.npy"):
        assert np.array_equal(np.load(tmp_path / "grouped" / name), np.load(tmp_path / "shuffled" / name))


def test_a_wrong_item_map_is_refused(official, base_config, tmp_path):
    folder, _ = official
    lines = (folder / "item_map.tsv").read_text().splitlines()
    ids, tokens = zip(*(line.split("\t") for line in lines))
    (tmp_path / "map.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in zip(ids, tokens[1:] + tokens[:1])))
    with pytest.raises(TeacherArtifactError, match=r"only 0\.\d% of the official rows match"):
        _import(base_config, folder, tmp_path / "teacher", item_map=tmp_path / "map.tsv")
    assert not (tmp_path / "teacher").exists()


def _set_nan(path):
    table = np.loadtxt(path)
    table[3, 2] = np.nan
    np.savetxt(path, table)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: np.savetxt(f / "confidence_train.txt", np.loadtxt(f / "confidence_train.txt")[:-1]), "disagree on their rows"),
        (lambda f: (f / "item_map.tsv").write_text("\n".join((f / "item_map.tsv").read_text().splitlines()[:-1])), "the item map does not have"),
        (lambda f: (f / "item_map.tsv").write_text("0\ta\n0\tb\n"), "appears twice"),
        (lambda f: _set_nan(f / "confidence_train.txt"), "NaN or infinite distances"),
    ],
)
def test_malformed_official_files_are_refused(official, base_config, tmp_path, change, message):
    folder, _ = official
    for name in ("train_data.df", "myrank_train.txt", "confidence_train.txt", "all_embeddings.pt", "item_map.tsv"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    change(tmp_path)
    with pytest.raises(TeacherArtifactError, match=message):
        _import(base_config, tmp_path, tmp_path / "teacher")
    assert not (tmp_path / "teacher").exists()
