"""Atomic writes: a crash at any instant leaves either the old file or the new one, never half.

Every file a user keeps (configs, checkpoints, predictions, exports) is written through here:
write to a temporary sibling, flush and fsync, then `os.replace` it over the target (atomic on
POSIX within one filesystem). Directories are built under a temporary name and renamed last.

Permissions follow the user's umask, as files written with `open()` do (the temporary files
`tempfile` creates are private, 0600/0700, and would keep that mode after the rename).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    # The only way to read the umask is to set it; the lock keeps two readers from racing.
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The mode `open()` (0o666) or `mkdir()` (0o777) would give under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path beside `path`; renames it over `path` if the block succeeds.

    The temporary name keeps the suffix of `path` so writers that check extensions (Keras wants
    `.keras`, NumPy adds `.npy`) accept it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)


@contextlib.contextmanager
def atomic_directory(path: str | Path):
    """Yields a temporary directory beside `path`; it replaces `path` only if the block succeeds.

    An interrupted writer leaves a hidden `.NAME.tmp-*` folder, never a complete-looking `path`.
    An existing `path` is moved aside first and removed once the new one is in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, default_mode(directory=True))
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_writable_dir(path: str | Path) -> Path:
    """Creates folder `path` if needed and checks a file can be created in it.

    Raises:
        OSError: it cannot be created or written (a file of that name, no permission, ...).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=path)
    os.close(fd)
    os.unlink(probe)
    return path


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
