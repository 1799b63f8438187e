r"""Recommend from a folder written by ``python -m recbole_distill.serving.export``.

This file needs only numpy and onnxruntime or torch (no RecBole, no training data); the export copies it
into the folder, so a service can use the folder alone:

    from recommend import Recommender                      # or: from recbole_distill.serving import Recommender
    recommender = Recommender("serving/sasrec")             # ONNX Runtime if installed, else TorchScript
    recommender.recommend(["242", "302", "377"], n=10)      # [(item token, score), ...], best first

    python serving/sasrec/recommend.py --n=10 242 302 377
"""

import argparse
import json
from pathlib import Path

import numpy as np

BACKENDS = ("onnx", "torchscript")


class Recommender:
    """Top-N items for item histories, from an exported model (``backend``: ``onnx`` or ``torchscript``)."""

    def __init__(self, folder, backend=None):
        self.folder = Path(folder)
        meta_file = self.folder / "serving.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"'{meta_file}' is missing: '{self.folder}' is not an exported model folder.")
        self.meta = json.loads(meta_file.read_text(encoding="utf-8"))
        self.items = (self.folder / "items.txt").read_text(encoding="utf-8").splitlines()
        self.item_id = {token: i for i, token in enumerate(self.items) if i > 0}
        self.max_len, self.n = self.meta["max_seq_length"], self.meta["n"]
        self.backend = backend or next(b for b in BACKENDS if b in self.meta["formats"] and _available(b))
        if self.backend not in self.meta["formats"]:
            raise ValueError(f"backend '{self.backend}' was not exported to '{self.folder}' (it has {self.meta['formats']}).")
        if self.backend == "onnx":
            import onnxruntime

            self._session = onnxruntime.InferenceSession(str(self.folder / "model.onnx"), providers=["CPUExecutionProvider"])
            # a model that ignores the lengths (CORE, NextItNet) exports without the item_seq_len input
            self._inputs = [i.name for i in self._session.get_inputs()]
        else:
            import torch

            self._module = torch.jit.load(str(self.folder / "model.pt"), map_location="cpu").eval()

    def encode(self, histories):
        """``(item_seq, item_seq_len)`` int64 arrays in RecBole's layout: the last ``max_seq_length`` items."""
        item_seq = np.zeros((len(histories), self.max_len), dtype=np.int64)
        lengths = np.zeros(len(histories), dtype=np.int64)
        for row, history in enumerate(histories):
            if len(history) == 0:
                raise ValueError(f"history {row} is empty; a sequential model needs at least one item.")
            unknown = [token for token in history if token not in self.item_id]
            if unknown:
                raise ValueError(f"item token(s) {unknown[:5]} of history {row} are not in the model's catalogue "
                                 f"({self.folder / 'items.txt'}); drop them or retrain with these items.")
            recent = [self.item_id[token] for token in history][-self.max_len :]
            item_seq[row, : len(recent)] = recent
            lengths[row] = len(recent)
        return item_seq, lengths

    def top_ids(self, item_seq, item_seq_len):
        """The exported graph's ``(scores, item ids)``, each ``[B, n]``."""
        if self.backend == "onnx":
            given = {"item_seq": item_seq, "item_seq_len": item_seq_len}
            return self._session.run(None, {name: given[name] for name in self._inputs})
        import torch

        with torch.inference_mode():
            scores, ids = self._module(torch.from_numpy(item_seq), torch.from_numpy(item_seq_len))
        return scores.numpy(), ids.numpy()

    def recommend_batch(self, histories, n=10):
        """For each history (a list of item tokens, oldest first), its top-``n`` ``(token, score)`` pairs."""
        if not 1 <= n <= self.n:
            raise ValueError(f"n = {n}: this export returns at most {self.n} items (export again with --n).")
        scores, ids = self.top_ids(*self.encode(histories))
        return [[(self.items[i], float(s)) for i, s in zip(row_ids[:n], row_scores[:n])] for row_ids, row_scores in zip(ids, scores)]

    def recommend(self, history, n=10):
        """The top-``n`` ``(item token, score)`` pairs for one history of item tokens, oldest first."""
        return self.recommend_batch([history], n)[0]


def _available(backend):
    import importlib.util

    return importlib.util.find_spec("onnxruntime" if backend == "onnx" else "torch") is not None


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 1, as every recbole-distill command
        self.exit(1, f"recbole-distill: error: {message} (see --help)\n")


def main():
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("history", nargs="+", help="item tokens, oldest first")
    parser.add_argument("--model", default=str(Path(__file__).parent), help="exported folder (default: this file's)")
    parser.add_argument("--n", type=int, default=10, help="items to recommend")
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: onnx if onnxruntime is installed")
    args = parser.parse_args()
    try:
        for token, score in Recommender(args.model, args.backend).recommend(args.history, args.n):
            print(f"{token}\t{score:.4f}")
    except (ValueError, OSError) as e:
        parser.exit(1, f"recbole-distill: error: {e}\n")


if __name__ == "__main__":
    main()
