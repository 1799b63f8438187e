r"""Export a trained sequential recommender for serving: TorchScript and ONNX, no RecBole needed.

The exported graph takes a batch of histories in RecBole's layout (``item_seq`` ``[B, L]`` int64 item
ids, oldest first, 0-padded on the right; ``item_seq_len`` ``[B]``) and returns the top-N items of the
model's own ``full_sort_predict`` scores (``scores`` ``[B, N]`` float32, ``items`` ``[B, N]`` int64 ids;
the padding id 0 is never recommended). Everything the scores depend on is inside the graph: a DLLM2Rec
student's item table, the projection of the teacher's embeddings fused with its ID embeddings, is
computed once and stored as a constant, so no teacher file is needed at serving time. The folder holds:

- ``model.pt`` (TorchScript) and ``model.onnx`` (ONNX, opset 17), each with a dynamic batch size;
- ``items.txt``: the item token of each id (line ``i`` = id ``i``; line 0 is ``[PAD]``);
- ``serving.json``: model, checkpoint, history length L, N, input and output names;
- ``recommend.py``: :mod:`recbole_distill.serving.recommend`, which needs only numpy and torch or
  onnxruntime, so the folder is all a service needs.

    python -m recbole_distill.serving.export --model_file=saved/DLLM2RecSASRec-....pth --output=serving/sasrec
"""

import json
import shutil
import warnings
from logging import getLogger
from pathlib import Path

import torch
from recbole.model.sequential_recommender import BERT4Rec
from recbole.utils import set_color

from recbole_distill.cli import ArgumentParser, positive_int, run_command
from recbole_distill.data.artifacts import atomic_write
from recbole_distill.errors import RecBoleDistillError
from recbole_distill.quick_start import load_data_and_model
from recbole_distill.serving import recommend

FORMATS = ("torchscript", "onnx")
INPUTS, OUTPUTS = ["item_seq", "item_seq_len"], ["scores", "items"]


def _append_mask(item_seq, item_seq_len, mask_token):
    """RecBole's ``BERT4Rec.reconstruct_test_data`` without its Python loop over the batch (same result):
    ``[MASK]`` written after the last item, then the first column dropped."""
    padded = torch.cat([item_seq, torch.zeros_like(item_seq[:, :1])], dim=1)
    padded = padded.scatter(1, item_seq_len[:, None], torch.full_like(item_seq_len[:, None], mask_token))
    return padded[:, 1:]


class TopN(torch.nn.Module):
    """A checkpoint's ``full_sort_predict`` followed by its top-``n``: the graph that is exported."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n = model, n
        self.item_seq, self.item_seq_len = model.ITEM_SEQ, model.ITEM_SEQ_LEN
        if isinstance(model, BERT4Rec):  # a loop over the batch cannot be traced
            model.reconstruct_test_data = lambda seq, lengths: _append_mask(seq, lengths, model.mask_token)
        padding = torch.zeros(model.n_items, dtype=torch.bool)
        padding[0] = True
        self.register_buffer("padding", padding)

    def scores(self, item_seq, item_seq_len):
        """Every item's score, padding excluded: ``full_sort_predict`` of the histories alone."""
        try:
            scores = self.model.full_sort_predict({self.item_seq: item_seq, self.item_seq_len: item_seq_len})
        except KeyError as e:  # a field of RecBole's interaction besides the history, e.g. the user id
            raise RecBoleDistillError(
                f"{type(self.model).__name__} cannot be exported for serving: its full_sort_predict reads {e} besides "
                f"the history ({self.item_seq}, {self.item_seq_len}), and the export serves histories alone."
            ) from None
        return scores.view(item_seq.size(0), -1).masked_fill(self.padding, float("-inf"))

    def forward(self, item_seq, item_seq_len):
        return self.scores(item_seq, item_seq_len).topk(self.n, dim=1)


def _histories(test_data, rows):
    """Real test histories ``(item_seq, item_seq_len)``: those of the samples ``rows``."""
    feat = test_data._dataset.inter_feat[rows]
    return feat[test_data._dataset.item_id_list_field].cpu(), feat[test_data._dataset.item_list_length_field].cpu()


def _check(model, graph, histories, run, engine):
    """Refuse an export (``run``, a function like ``graph``) that does not give the checkpoint's own top-N on
    real histories: the same scores, carried by items that have them (ties in any order)."""
    if run is None:
        return
    want, _ = graph(*histories)
    close = dict(atol=1e-4, rtol=1e-4)
    try:
        scores, ids = run(*histories)
        same = scores.shape == want.shape and torch.allclose(scores, want, **close)
        same = same and torch.allclose(graph.scores(*histories).gather(1, ids), scores, **close)
        failure = "" if same else "it ranks other items"
    except Exception as e:  # a traced graph that fixed the batch size, or shapes, of its example
        failure = f"it fails with {type(e).__name__}"
    if failure:
        raise RecBoleDistillError(
            f"the {engine} export of {type(model).__name__} does not give the checkpoint's own top-N on {len(want)} test "
            f"histories ({failure}): its full_sort_predict takes a path the tracer cannot record (Python loops over the "
            "batch, numpy). Serve the checkpoint with RecBole instead; nothing was written."
        )


def _onnx_runner(file):
    """The ONNX file as a function of torch tensors (ONNX Runtime; the identity check is skipped without it)."""
    try:
        import onnxruntime
    except ImportError:
        getLogger().warning("onnxruntime is not installed: the ONNX export is not checked against the checkpoint")
        return None
    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]  # a model that ignores the lengths has no item_seq_len input

    def run(item_seq, item_seq_len):
        given = {"item_seq": item_seq.numpy(), "item_seq_len": item_seq_len.numpy()}
        scores, ids = session.run(None, {name: given[name] for name in inputs})
        return torch.from_numpy(scores), torch.from_numpy(ids)

    return run


@torch.no_grad()
def export_for_serving(model_file, output, formats=FORMATS, n=100):
    """Export ``model_file`` into the folder ``output``; return the folder's ``serving.json`` content."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise RecBoleDistillError(f"unknown export format(s) {sorted(unknown)}; choose among {FORMATS}.")
    config, model, dataset, _, _, test_data = load_data_and_model(model_file, purpose="serving export")
    model = model.cpu().eval()
    if not 1 <= n < model.n_items:
        raise RecBoleDistillError(f"n = {n}: expected 1 <= n < {model.n_items}, the number of items.")
    graph = TopN(model, n).eval()
    example = _histories(test_data, slice(0, 4))
    graph(*example)  # a model that needs more than the histories is refused here, before anything is written
    checked = _histories(test_data, slice(0, 256))  # every export must give the checkpoint's top-N on these
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)

    traced = tmp = None
    try:
        if "torchscript" in formats:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about Python values turned constants
                traced = torch.jit.trace(graph, example, check_trace=False)
            _check(model, graph, checked, traced, "TorchScript")
        if "onnx" in formats:
            tmp = output / ".model.onnx.tmp"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    torch.onnx.export(
                        graph, example, str(tmp), input_names=INPUTS, output_names=OUTPUTS, opset_version=17,
                        dynamo=False, dynamic_axes={name: {0: "batch"} for name in INPUTS + OUTPUTS},
                    )
                except torch.onnx.errors.OnnxExporterError as e:  # e.g. FEARec's aten::fft_rfft
                    raise RecBoleDistillError(
                        f"{type(model).__name__} cannot be exported to ONNX: {str(e).splitlines()[0]}. "
                        "Export it with --formats=torchscript; nothing was written."
                    ) from None
            _check(model, graph, checked, _onnx_runner(tmp), "ONNX")
    except BaseException:
        if tmp is not None and tmp.exists():
            tmp.unlink()
        raise
    if traced is not None:
        atomic_write(output / "model.pt", lambda f: torch.jit.save(traced, f))
    if tmp is not None:
        tmp.replace(output / "model.onnx")

    items = dataset.field2id_token[dataset.iid_field][: model.n_items]
    atomic_write(output / "items.txt", lambda f: f.write("".join(f"{token}\n" for token in items).encode("utf-8")))
    meta = {
        "model": config["model"],
        "dataset": config["dataset"],
        "checkpoint": str(model_file),
        "max_seq_length": int(config["MAX_ITEM_LIST_LENGTH"]),
        "n": n,
        "n_items": int(model.n_items),
        "formats": [name for name in FORMATS if name in formats],
        "inputs": {"item_seq": "int64 [batch, max_seq_length]: item ids, oldest first, 0-padded on the right",
                   "item_seq_len": "int64 [batch]: history lengths, 1 .. max_seq_length"},
        "outputs": {"scores": "float32 [batch, n]", "items": "int64 [batch, n]: item ids (items.txt lines)"},
    }
    atomic_write(output / "serving.json", lambda f: f.write(json.dumps(meta, indent=2).encode("utf-8")))
    shutil.copyfile(recommend.__file__, output / "recommend.py")
    getLogger().info(set_color("Exported for serving", "blue") + f": {output} ({', '.join(meta['formats'])}, top-{n})")
    return meta


def main():
    parser = ArgumentParser(__doc__)
    parser.add_argument("--model_file", required=True, help="checkpoint saved by RecBole or recbole-distill")
    parser.add_argument("--output", required=True, help="folder to write the serving files into")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: torchscript, onnx")
    parser.add_argument("--n", type=positive_int, default=100, help="items returned per history (recommend() takes up to n)")
    args = parser.parse_args()
    export_for_serving(args.model_file, args.output, tuple(args.formats.split(",")), args.n)


if __name__ == "__main__":
    run_command(main)
