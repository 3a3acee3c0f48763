"""Run directories two processes cannot corrupt: a lock, no silent overwrite, strict resume,
and stale temporary files of killed writes removed by the next writer."""

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from squeezelab.cli import main
from squeezelab.errors import ConfigError
from squeezelab.io.atomic import atomic_write_bytes, exclusive_lock
from squeezelab.train import fit
from tests.train.conftest import TINY_SPEC, tiny_config, train_argv


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_SPEC))
    return path


def _one_error_line(capsys) -> str:
    err = [x for x in capsys.readouterr().err.splitlines() if not x.startswith("warning:")]
    assert len(err) == 1, err
    return err[0]


def test_second_writer_is_refused_naming_the_holder(tmp_path, capsys, spec):
    run = tmp_path / "run"
    # a real second process holds the run directory's lock while "training"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from squeezelab.io.atomic import exclusive_lock\n"
            f"with exclusive_lock({str(run / '.lock')!r}, 'run'):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(train_argv(spec, run)) == 2
        line = _one_error_line(capsys)
        assert f"pid {holder.pid}" in line and "in use" in line and str(run) in line
        assert not (run / "config.json").exists()  # the refused run wrote nothing
    finally:
        holder.kill()
        holder.wait()
    assert main(train_argv(spec, run)) == 0  # the OS dropped the killed holder's lock
    assert (run / "best.safetensors").is_file()


def test_two_concurrent_trains_one_refused(tmp_path, spec):
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "squeezelab", *train_argv(spec, run)]
    argv[argv.index("64")] = "256"  # long enough for the two runs to overlap
    argv[argv.index("--epochs") + 1] = "3"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 60
    while not (run / ".lock").is_file() or not (run / ".lock").read_text():
        assert time.time() < deadline and first.poll() is None
        time.sleep(0.02)
    second = subprocess.run(argv, capture_output=True, text=True, env=env)
    overlapped = first.poll() is None
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0 and json.loads(out.splitlines()[-1])["epoch"] == 3
    assert second.returncode == 2
    err = second.stderr.strip().splitlines()
    assert len(err) == 1, err
    # while the first runs its lock refuses the second; once it ended, its files do
    assert (f"pid {first.pid}" if overlapped else "already holds") in err[0], err


def test_finished_run_is_not_overwritten_without_flag(tmp_path, capsys, spec):
    run = tmp_path / "run"
    assert main(train_argv(spec, run)) == 0
    capsys.readouterr()
    before = {p: (run / p).read_bytes() for p in ("best.safetensors", "metrics.jsonl")}
    assert main(train_argv(spec, run, "--seed", "3")) == 2
    line = _one_error_line(capsys)
    assert "--overwrite" in line and "--resume" in line
    assert {p: (run / p).read_bytes() for p in before} == before
    assert main(train_argv(spec, run, "--seed", "3", "--overwrite")) == 0
    assert json.loads((run / "config.json").read_text())["seed"] == 3
    with pytest.raises(ConfigError, match="already holds"):  # the library refuses too
        next(fit(tiny_config(), run))


def test_resume_refuses_contradicting_flags_naming_each(tmp_path, capsys, spec):
    run = tmp_path / "run"
    assert main(train_argv(spec, run)) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "10", "--lr", "5", "alexnet"]) == 2
    line = _one_error_line(capsys)
    assert "--epochs=10" in line and "--lr=5.0" in line and "MODEL='alexnet'" in line
    assert main(["train", "--resume", str(run), "--device", "cpu", "--json"]) == 0  # free field
    assert main(["train", "--resume", str(run), "--epochs", "1", "--json"]) == 0  # same value


def test_resume_refuses_a_typed_flag_even_when_it_is_the_default(tmp_path, capsys, spec):
    run = tmp_path / "run"
    assert main(train_argv(spec, run, "--seed", "3", "--no-channels-last")) == 0
    capsys.readouterr()
    resume = ["train", "--resume", str(run), "--json"]
    # seed 0, fashion-mnist and --channels-last are the defaults: typed, they contradict
    assert main([*resume, "--seed", "0", "--data", "fashion-mnist", "--channels-last"]) == 2
    line = _one_error_line(capsys)
    assert "--seed=0 (run: 3)" in line and "--data='fashion-mnist'" in line
    assert "--channels-last=True (run: False)" in line
    assert main([*resume, "--seed", "3", "--data", "synthetic", "--no-channels-last"]) == 0


def test_resume_with_malformed_config_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"epochs": 3,')
    assert main(["train", "--resume", str(run)]) == 2
    line = _one_error_line(capsys)
    assert "config.json" in line and "not a run config" in line
    (run / "config.json").write_text("[1, 2]")
    assert main(["train", "--resume", str(run)]) == 2
    assert "config.json" in _one_error_line(capsys)


def test_lock_is_exclusive_within_a_process_too(tmp_path):
    busy = pytest.raises(ConfigError, match=f"x is in use by pid {os.getpid()}")
    with exclusive_lock(tmp_path / ".lock", "thing"), busy, exclusive_lock(tmp_path / ".lock", "x"):
        pass
    with exclusive_lock(tmp_path / ".lock", "thing"):  # released
        pass


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path):
    target = tmp_path / "x.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = tmp_path / f".x.json.{dead}.abc123.tmp"
    live = tmp_path / f".x.json.{os.getppid()}.def456.tmp"  # a live writer's: kept
    old = tmp_path / ".x.json.oldstyle.tmp"  # before pids were recorded, an hour old
    other = tmp_path / f".y.json.{dead}.abc123.tmp"  # another target's: not ours to clean
    for p in (stale, live, old, other):
        p.write_bytes(b"half")
    os.utime(old, (time.time() - 7200,) * 2)
    atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert not stale.exists() and not old.exists()
    assert live.exists() and other.exists()
