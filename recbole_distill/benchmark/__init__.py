"""Benchmark command: ``python -m recbole_distill.benchmark`` (see ``__main__``)."""
