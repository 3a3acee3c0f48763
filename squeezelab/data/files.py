"""Bounded reads of untrusted dataset files, the dataset limits and the cache directory.

Readers open only regular files (a FIFO or device named ``x.png`` would block or never
end), without blocking, and check a file's size against the dataset ceiling before
reading it. See docs/training.md ("Data") for the limits and their environment variables.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from squeezelab.errors import DatasetError

# Decoded bytes one dataset may take (images as uint8); raise it with this variable.
MAX_DATASET_BYTES_ENV = "SQUEEZELAB_MAX_DATASET_BYTES"
DEFAULT_MAX_DATASET_BYTES = 16 * 2**30
CACHE_ENV = "SQUEEZELAB_CACHE"  # overrides the cache directory


def max_dataset_bytes() -> int:
    """The ceiling on a dataset's decoded bytes (``$SQUEEZELAB_MAX_DATASET_BYTES``, 16 GiB)."""
    text = os.environ.get(MAX_DATASET_BYTES_ENV, "")
    if not text:
        return DEFAULT_MAX_DATASET_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise DatasetError(f"{MAX_DATASET_BYTES_ENV}={text!r} is invalid: allowed an integer >= 1")
    return value


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _stat_error(path: Path, e: OSError) -> DatasetError:
    if e.errno == errno.ELOOP:
        return DatasetError(f"{path}: symlink loop (too many levels of symbolic links)")
    if e.errno == errno.ENOENT:
        return DatasetError(f"{path}: does not exist (or is a dangling symlink)")
    return DatasetError(f"{path}: cannot read ({e.strerror or e})")


def check_regular(path: str | Path) -> os.stat_result:
    """``os.stat`` of ``path`` (symlinks followed); DatasetError unless it is a regular file."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise _stat_error(path, e) from e
    if not stat.S_ISREG(st.st_mode):
        raise DatasetError(f"{path}: is {_kind(st.st_mode)}: allowed regular files only")
    return st


def open_regular(path: str | Path, limit: int | None = None):
    """Open ``path`` for binary reading if it is a regular file of at most ``limit`` bytes.

    Opens with ``O_NONBLOCK`` and checks the opened descriptor, so a FIFO swapped in after
    a listing cannot block the reader.
    """
    path = Path(path)
    limit = max_dataset_bytes() if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise _stat_error(path, e) from e
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise DatasetError(f"{path}: is {_kind(st.st_mode)}: allowed regular files only")
    if st.st_size > limit:
        os.close(fd)
        raise DatasetError(
            f"{path}: {st.st_size} bytes, over the dataset limit of {limit} bytes "
            f"(raise it with {MAX_DATASET_BYTES_ENV})"
        )
    return os.fdopen(fd, "rb")


def read_regular(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    with open_regular(path, limit) as f:
        try:
            return f.read()
        except OSError as e:
            raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from e


def cache_dir() -> Path:
    """Where decoded datasets are cached: ``$SQUEEZELAB_CACHE``, else
    ``$XDG_CACHE_HOME/squeezelab``, else ``~/.cache/squeezelab``; never inside the data.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "squeezelab"
