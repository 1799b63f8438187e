"""Builders that write teacher artifacts (see :mod:`recbole_distill.data.artifacts`)."""
