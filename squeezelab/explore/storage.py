"""Where a study lives: a SQLite file in the study directory, or a PostgreSQL URL.

Both go through Optuna's RDBStorage with heartbeats, so a trial whose worker died is
marked failed after ``grace_period_s`` and retried once with the same parameters.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

from squeezelab.errors import ConfigError, one_line

DB_NAME = "study.db"
POINTER_NAME = "study.json"  # in a study dir whose study lives elsewhere (PostgreSQL)
HEARTBEAT_S = 10  # a live worker touches its trial this often
GRACE_S = 40  # a trial silent this long is failed and retried


def storage_url(storage: str | None, study_dir: str | Path | None = None) -> str:
    """``None`` -> the SQLite file in ``study_dir``; a directory -> its SQLite file; a URL as is."""
    if storage is None:
        if study_dir is None:
            raise ConfigError("--storage is missing: give a study directory (-o) or a storage URL")
        return f"sqlite:///{Path(study_dir).resolve() / DB_NAME}"
    if "://" not in storage:
        path = Path(storage)
        return (
            f"sqlite:///{(path / DB_NAME if path.is_dir() or not path.suffix else path).resolve()}"
        )
    if not storage.startswith(("sqlite:///", "postgresql://", "postgresql+")):
        raise ConfigError(
            f"--storage={storage!r} is invalid: allowed a study directory, sqlite:///FILE "
            "or postgresql://USER@HOST:PORT/DB"
        )
    if storage.startswith("postgresql://"):  # SQLAlchemy 2.1 would pick psycopg 3; we ship psycopg2
        return "postgresql+psycopg2://" + storage.removeprefix("postgresql://")
    return storage


def record_storage(study_dir: str | Path, url: str, study_name: str) -> None:
    """Note in ``study_dir`` where its study lives, so ``study show DIR`` finds it.

    The password of a URL is left out (libpq then reads PGPASSWORD or ~/.pgpass).
    """
    from squeezelab.io import atomic_write_json

    if url.startswith("sqlite:///"):
        return
    from sqlalchemy.engine import make_url

    safe = make_url(url).set(password=None).render_as_string(hide_password=False)
    atomic_write_json(Path(study_dir) / POINTER_NAME, {"storage": safe, "study": study_name})


def recorded_storage(study_dir: str | Path) -> tuple[str, str] | None:
    """``(storage URL, study name)`` noted by :func:`record_storage`, or None."""
    import json

    path = Path(study_dir) / POINTER_NAME
    if (Path(study_dir) / DB_NAME).is_file() or not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        return str(d["storage"]), str(d["study"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a study pointer ({e}); allowed: {{storage, study}}") from e


@contextmanager
def quiet_experimental():
    """Silence Optuna's ExperimentalWarning for the heartbeat API this module relies on."""
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield


def open_storage(
    storage: str | None,
    study_dir: str | Path | None = None,
    heartbeat_s: int = HEARTBEAT_S,
    grace_s: int = GRACE_S,
    max_retry: int = 3,
):
    """An Optuna RDBStorage with heartbeats and retry of stale trials.

    Example:
        >>> st = open_storage(None, "runs/sr-sweep")  # doctest: +SKIP
    """
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    url = storage_url(storage, study_dir)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = {"connect_args": {"timeout": 60}}
    else:
        engine = {"pool_pre_ping": True}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with quiet_experimental():
            return RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat_s,
                grace_period=grace_s,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=max_retry
                ),
            )
    except Exception as e:  # sqlalchemy / driver errors: a bad URL, a server not up
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"--storage={url!r} cannot be opened: {one_line(e)}") from e
