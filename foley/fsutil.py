"""Atomic file writes: a temporary file in the target folder, then an atomic rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# mkstemp creates files 0600; finished files get the usual permissions. Read once, at import (os.umask
# can only be read by setting it, which is not thread-safe later).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the final suffix (libraries choose formats by it). On any exception the
    temporary file is removed and ``path`` is untouched, so a crash never leaves a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Fail fast (one-line FoleyError) unless ``path`` can be written as a file; call it before long work.

    A file can be written when ``path`` is not a folder and its nearest existing ancestor is a folder
    in which a file can really be created (probed with a temporary file: permission bits alone do not
    tell, e.g. for root or on read-only mounts). Missing folders are created later by the writer.
    """
    from .errors import FoleyError

    path = Path(path)
    if path.is_dir():
        raise FoleyError(f"{path}: is a folder; give a file path (folder/name.ext) for the {what}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise FoleyError(f"{path}: cannot write the {what} there: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".foley-probe.", dir=folder)
    except OSError as e:
        raise FoleyError(f"{path}: cannot write the {what} in {folder} ({e.strerror or e}); "
                         "choose a writable folder") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
