"""Distillation losses and layers (written once) and the student models built from them."""
