"""Files written so that a reader sees them complete or not at all, even with several writers at once."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["write_atomically"]


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """`write(tmp)` to a fresh name beside `path`, then rename it over `path` (atomic on POSIX): writers generating
    the same data set at once (DDP ranks, two runs) never read a half-written file nor rename each other's."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
