"""Writing a file whole: bills, rule files, a scaffold."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` as `path`: a new file in the same folder, then renamed over the old entry.

    The rename replaces the folder's entry itself, so a link (or a hard link) there is
    replaced, never written through, and a reader sees the old bytes or the new, never part.
    """
    try:
        mode = path.lstat().st_mode & 0o777 if path.is_file() and not path.is_symlink() else None
    except OSError:
        mode = None
    if mode is None:
        umask = os.umask(0)  # read the umask: the new file gets the mode open() would give it
        os.umask(umask)
        mode = 0o666 & ~umask
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
