"""``DLLM2Rec<Model>`` for RecBole's sequential models: made on demand, trained one epoch on the slice, evaluated
by RecBole's evaluator, saved and loaded again, exported for serving where the export can serve it; what a model
cannot distil or export is refused in one line."""

import numpy as np
import pytest

from recbole_distill import get_model, load_data_and_model, run_recbole_distill
from recbole_distill.errors import ConfigError, RecBoleDistillError
from recbole_distill.model.dllm2rec import DLLM2Rec
from recbole_distill.serving import Recommender
from recbole_distill.serving.export import export_for_serving

from conftest import SLICE, checkpoint_top_n

# RecBole's sequential models that train on the slice's interactions alone, and what DLLM2Rec distils into them
BOTH = ["NARM", "STAMP", "Caser", "NextItNet", "LightSANs", "CORE", "SRGNN", "GCSAN", "FOSSIL", "HGN", "HRM", "NPE",
        "SHAN", "SINE", "TransRec", "FEARec", "SASRecCPR", "GRU4RecCPR"]
RANKING_ONLY = ["FPMC", "RepeatNet"]  # no item_embedding table to fuse the teacher's embeddings into
FAST = {"NARM", "CORE", "FPMC"}  # the default suite; the rest run with -m slow
# what the serving export (histories in, top-N out) does with each: serve it, or refuse it and say why
REFUSED = {
    **dict.fromkeys(["Caser", "FOSSIL", "HGN", "HRM", "NPE", "SHAN", "TransRec", "FPMC"], "reads 'user_id' besides the history"),
    # the CPR models' full_sort_predict computes their loss too, which reads the target
    **dict.fromkeys(["SASRecCPR", "GRU4RecCPR"], "reads 'item_id' besides the history"),
    # session graphs built with numpy: a trace fixes them to its example batch
    **dict.fromkeys(["SRGNN", "GCSAN"], "does not give the checkpoint's own top-N"),
}
TORCHSCRIPT_ONLY = {"FEARec": "aten::fft_rfft"}  # ONNX has no operator for it
OWN_SETTINGS = {"FEARec": {"n_layers": 2}}  # FEARec divides by n_layers - 1 (RecBole's default is 2)


def _marks(model):
    return () if model in FAST else (pytest.mark.slow,)


@pytest.mark.parametrize("backbone, ed_weight", [pytest.param(m, 0.3, marks=_marks(m)) for m in BOTH]
                         + [pytest.param(m, 0, marks=_marks(m)) for m in RANKING_ONLY])
def test_any_sequential_model_distils_trains_and_reloads(backbone, ed_weight, base_config, teacher_dir, tmp_path):
    name = f"DLLM2Rec{backbone}"
    student = get_model(name)
    assert issubclass(student, DLLM2Rec) and issubclass(student, get_model(backbone))
    config = {**base_config, "teacher_path": str(teacher_dir), "checkpoint_dir": str(tmp_path), "ed_weight": ed_weight,
              **OWN_SETTINGS.get(backbone, {})}
    result = run_recbole_distill(model=name, dataset=SLICE, config_dict=config)
    assert set(result["test_result"]) >= {"ndcg@10", "hit@10"}
    [checkpoint] = tmp_path.glob(f"{name}-*.pth")
    _, model, _, _, _, _ = load_data_and_model(str(checkpoint))  # the made class pickles by name
    assert type(model) is student

    folder = tmp_path / "serving"
    if backbone in REFUSED:
        with pytest.raises(RecBoleDistillError, match=REFUSED[backbone]):
            export_for_serving(checkpoint, folder, n=10)
        assert not (folder / "model.pt").exists() and not (folder / "model.onnx").exists()
        return
    backends = ("torchscript", "onnx")
    if backbone in TORCHSCRIPT_ONLY:
        with pytest.raises(RecBoleDistillError, match=f"cannot be exported to ONNX: .*{TORCHSCRIPT_ONLY[backbone]}"):
            export_for_serving(checkpoint, folder, n=10)
        assert not (folder / "model.pt").exists() and not (folder / "model.onnx").exists()
        backends = ("torchscript",)
    else:
        pytest.importorskip("onnxruntime")
    export_for_serving(checkpoint, folder, formats=backends, n=10)
    item_seq, item_seq_len, scores, _ = checkpoint_top_n(checkpoint, 10)
    for backend in backends:
        got, _ = Recommender(folder, backend).top_ids(item_seq, item_seq_len)
        assert np.allclose(got, scores, atol=1e-4), backend


@pytest.mark.parametrize("backbone", RANKING_ONLY)
def test_embedding_distillation_is_refused_without_an_item_embedding(backbone, base_config, teacher_dir, tmp_path):
    config = {**base_config, "teacher_path": str(teacher_dir), "checkpoint_dir": str(tmp_path), "ed_weight": 0.3}
    with pytest.raises(ConfigError, match=f"'ed_weight' = 0.3: expected 0 for DLLM2Rec{backbone}: embedding distillation"):
        run_recbole_distill(model=f"DLLM2Rec{backbone}", dataset=SLICE, config_dict=config)


def test_ranking_distillation_is_refused_without_full_sort_predict(base_config, teacher_dir):
    config = {**base_config, "teacher_path": str(teacher_dir)}
    with pytest.raises(ConfigError, match="'rd_weight' = 0.7: expected 0 for DLLM2RecDIN: ranking distillation reads"):
        run_recbole_distill(model="DLLM2RecDIN", dataset=SLICE, config_dict=config)
