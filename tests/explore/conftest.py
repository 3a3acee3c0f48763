"""Fixtures for explore tests: a real PostgreSQL server on loopback, started per module."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server tools as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="module")
def postgres_url():
    """Start a throwaway PostgreSQL server; yield a URL to a fresh database; stop it."""
    initdb, pg_ctl, createdb = _pg_bin("initdb"), _pg_bin("pg_ctl"), _pg_bin("createdb")
    if not (initdb and pg_ctl and createdb):
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl, createdb) not found: apt-get install postgresql"
        )
    pytest.importorskip("psycopg2", reason="psycopg2 is needed for Optuna's PostgreSQL storage")
    root = tempfile.mkdtemp(prefix="sqz-pg-")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), _free_port()
    subprocess.run(
        _as_postgres([initdb, "-D", data, "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=100"
    subprocess.run(
        _as_postgres(
            [pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(root, "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_postgres([createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "sqz"]),
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/sqz"
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", data, "-m", "fast", "-w", "stop"]), capture_output=True
        )
        time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)
