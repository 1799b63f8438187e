"""Serving: export a trained recommender (TorchScript, ONNX) and recommend from the export."""

from recbole_distill.serving.recommend import Recommender

__all__ = ["Recommender"]
