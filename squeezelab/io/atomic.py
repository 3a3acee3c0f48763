"""Atomic writes, exclusive locks and up-front checks of output paths.

Every file squeezelab writes goes through :func:`atomic_path` (a temporary file beside
the target, fsync, rename, fsync the folder), so a crash leaves the old file or the new
one, never half of either; the temporary files a killed writer left are removed by the
next writer of the same target. :func:`exclusive_lock` is an OS lock (``flock``) held for
a run's life, so a second process writing the same run directory or study is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError

_LEGACY_STALE_S = 3600  # a temp file without a writer pid is stale after this long


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success fsync it and rename over ``path``.

    Example:
        >>> with atomic_path("out/x.bin") as tmp:  # doctest: +SKIP
        ...     tmp.write_bytes(b"data")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    # the writer's pid in the name lets the next writer tell a dead writer's leftover
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``path`` that killed writers left; returns them.

    A temp file ``.NAME.PID.XXXX.tmp`` is stale when process PID is gone (this host); one
    from before writer pids were recorded (``.NAME.XXXX.tmp``) when older than an hour.
    A live writer's file is never touched.
    """
    path = Path(path)
    prefix, removed = f".{path.name}.", []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")) or not entry.is_file():
            continue
        middle = name[len(prefix) : -len(".tmp")]
        pid_text, _, rest = middle.partition(".")
        try:
            if pid_text.isdigit() and rest:
                stale = int(pid_text) != os.getpid() and not _pid_alive(int(pid_text))
            else:
                stale = time.time() - entry.stat().st_mtime > _LEGACY_STALE_S
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # another writer removed it first, or no permission: leave it
            continue
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


@contextmanager
def exclusive_lock(path: str | os.PathLike, what: str, wait: bool = False) -> Iterator[Path]:
    """Hold an OS lock (``flock``) on the file ``path`` for the ``with`` block.

    The holder's pid, host and start time are written into the file; a second process
    is refused at once with a ConfigError naming them (``what`` says what is locked). The
    OS drops the lock when the holder exits, even on SIGKILL, so a crash leaves no stale
    lock. ``wait=True`` queues behind the holder instead of refusing.

    Example:
        >>> with exclusive_lock("runs/a/.lock", "run directory runs/a"):  # doctest: +SKIP
        ...     train()
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise ConfigError(
                f"{what} is in use by {holder}; allowed: wait for it to finish, "
                "or use another output path"
            ) from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        info = f"pid {os.getpid()} on {socket.gethostname()} (since {stamp})\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def check_writable(path: str | os.PathLike, flag: str, kind: str = "file") -> Path:
    """Refuse, before any work, an output ``path`` that cannot be written.

    ``kind`` is ``"file"`` (a file to write) or ``"dir"`` (a folder to create or fill).
    Raises ConfigError naming ``flag`` when ``path`` is the wrong kind of thing, a parent is
    a file, or the nearest existing folder is not writable.
    """
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise ConfigError(f"{flag}={str(path)!r} is a directory; allowed a file path")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag}={str(path)!r} is a file; allowed a directory path")
    probe = path if kind == "dir" and path.is_dir() else path.parent
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a dangling link: mkdir would fail on it
            raise ConfigError(f"{flag}={str(path)!r}: {probe} is a broken symlink")
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{flag}={str(path)!r}: its parent {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag}={str(path)!r}: folder {probe} is not writable")
    if path.exists() and kind == "file" and not os.access(path.parent, os.W_OK):
        raise ConfigError(f"{flag}={str(path)!r}: folder {path.parent} is not writable")
    return path
