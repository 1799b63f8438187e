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

    def forward(self, item_seq, item_seq_len):
        scores = self.model.full_sort_predict({self.item_seq: item_seq, self.item_seq_len: item_seq_len})
        scores = scores.view(item_seq.size(0), -1).masked_fill(self.padding, float("-inf"))
        return scores.topk(self.n, dim=1)


def _example(test_data, size=4):
    """A few real test histories, to trace with."""
    feat = test_data._dataset.inter_feat[:size]
    return feat[test_data._dataset.item_id_list_field], feat[test_data._dataset.item_list_length_field]


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
    example = tuple(t.cpu() for t in _example(test_data))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)

    if "torchscript" in formats:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python values turned constants
            traced = torch.jit.trace(graph, example, check_trace=False)
        atomic_write(output / "model.pt", lambda f: torch.jit.save(traced, f))
    if "onnx" in formats:
        tmp = output / ".model.onnx.tmp"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph, example, str(tmp), input_names=INPUTS, output_names=OUTPUTS, opset_version=17, dynamo=False,
                dynamic_axes={name: {0: "batch"} for name in INPUTS + OUTPUTS},
            )
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
