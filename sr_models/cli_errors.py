"""How every sr-models command line reports a failure: one line `error: <what> (<where>)`, exit status 1.

    parser = argparse.ArgumentParser(...)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with reported_errors(args.debug):
        ...  # the command's work

An exception raised inside the block is printed as one line on stderr and the process exits with status 1; with
`--debug` the exception propagates with its traceback. Messages name the input that was wrong and where it came
from (the library's errors are written that way); for an `OSError` the file is appended when the message lacks it.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from typing import Iterator

__all__ = ["add_debug_flag", "reported_errors", "describe_error"]


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """Give `parser` the `--debug` flag that `reported_errors` reads, and make its own refusals (a missing or
    malformed flag) one `error: ... (command line)` line with exit status 1, like every other error."""
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback")

    def error(message: str) -> None:
        print(f"error: {message} (command line; {parser.prog} --help lists the flags)", file=sys.stderr)
        raise SystemExit(1)

    parser.error = error


# the kinds of error the library raises for bad input; anything else is reported with its type (most likely a bug)
_EXPECTED = (ValueError, OSError, RuntimeError, LookupError, TypeError)


def describe_error(error: BaseException) -> str:
    """One line for `error`: the first line of its message, with the file of an `OSError` that lacks one in its
    message, and the exception's type when it is not one of the expected kinds."""
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror + (f" ({error.filename})" if error.filename else "")
    elif isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    else:
        text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]:
        lines = [lines[-1].partition(": ")[2] or lines[-1]]  # the worker's own error, after its traceback
    text = lines[0] if lines else type(error).__name__
    if not isinstance(error, _EXPECTED):
        text = f"{type(error).__name__}: {text} (--debug shows the traceback)"
    return text


@contextmanager
def reported_errors(debug: bool = False) -> Iterator[None]:
    """Turn an exception raised in the block into `error: ...` on stderr and exit status 1 (unless `debug`)."""
    try:
        yield
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:  # noqa: BLE001 - a command line reports every failure the same way
        if debug:
            raise
        print(f"error: {describe_error(error)}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
