r"""What every command-line entry point shares: one-line errors and RecBole-style flags.

Bad input to a command (a missing or unreadable path, a value out of range, a checkpoint the command cannot
use, a malformed file) ends in one line, ``recbole-distill: error: ...``, and exit status 1, never a
traceback. Output files are written atomically (see :func:`~recbole_distill.data.artifacts.atomic_write`),
so a refused command leaves nothing half-written.
"""

import argparse
import math
import shlex
import sys

from recbole_distill.errors import RecBoleDistillError

PREFIX = "recbole-distill: error: "


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors (a missing required flag, a value of the wrong type) end in one
    line and exit status 1, as the commands' other errors do."""

    def __init__(self, doc=None, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(description=doc, **kwargs)

    def error(self, message):
        self.exit(1, f"{PREFIX}{message} (see --help)\n")


def _number(cast, low=None):
    """An argparse ``type=``: ``cast`` of the text, finite and at least ``low``."""

    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {low}")
        return value

    return parse


positive_int = _number(int, low=1)  #: a whole number >= 1 (counts, sizes)
finite_float = _number(float)  #: any finite number


def fraction(text):
    """A finite number in [0, 1] (shares)."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 1]")
    return value


def config_files(value):
    """``--config_files="a.yaml b.yaml"`` as RecBole reads it: a list, or None."""
    return value.strip().split(" ") if value else None


def command_line(module):
    """How this process was started, as a teacher folder records it: ``python -m <module> <its flags>``."""
    return f"python -m {module} " + shlex.join(sys.argv[1:])


def run_command(main):
    """Run ``main()``; bad input ends in one line and exit status 1."""
    try:
        return main()
    except RecBoleDistillError as e:
        sys.exit(f"{PREFIX}{e}")
    except OSError as e:  # a path that is missing, a folder where a file belongs, no permission, a full disk
        sys.exit(f"{PREFIX}{e}")
