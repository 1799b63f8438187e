"""Config checks that models run in ``check_config``, before any data is loaded."""

import math
import numbers

from recbole_distill.errors import ConfigError


def is_number(value):
    """A finite real number (not a bool, not NaN, not infinite)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_number(config, key, low=None, high=None, low_open=False, high_open=False, meaning=""):
    """``config[key]`` is a number in the interval given by ``low`` / ``high`` (closed unless ``*_open``)."""
    value = config[key]
    inside = is_number(value)
    if inside and low is not None:
        inside = value > low if low_open else value >= low
    if inside and high is not None:
        inside = value < high if high_open else value <= high
    if not inside:
        lower = "" if low is None else ("(" if low_open else "[") + f"{low}, "
        upper = "" if high is None else f"{high}" + (")" if high_open else "]")
        interval = f"in {lower}{upper}" if low is not None and high is not None else (
            f"{'>' if low_open else '>='} {low}" if low is not None else f"{'<' if high_open else '<='} {high}"
        )
        raise ConfigError(key, value, f"a number {interval}" + (f" ({meaning})" if meaning else ""))


def check_whole(config, key, low=0, meaning=""):
    """``config[key]`` is a whole number ``>= low``."""
    value = config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(key, value, f"a whole number >= {low}" + (f" ({meaning})" if meaning else ""))


def check_choice(config, key, allowed):
    """``config[key]`` is one of ``allowed``."""
    if config[key] not in allowed:
        raise ConfigError(key, config[key], "one of " + ", ".join(map(repr, allowed)))
