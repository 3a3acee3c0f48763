"""A closed pipe (``squeezelab ... --json | head -1``) ends a command quietly."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv", [["spec", "squeezenet1_0", "--json"], ["spec", "squeezenet1_0"]])
def test_closed_pipe_is_quiet(tmp_path, argv):
    err = tmp_path / "err.txt"
    code = f"import sys; from squeezelab.cli import main; sys.exit(main({argv!r}))"
    # `true` exits before the CLI has imported torch, so every write meets a closed pipe
    subprocess.run(
        [
            "bash",
            "-c",
            f'( {sys.executable} -c "{code}" 2>{err}; echo $? >{tmp_path / "rc"} ) | true',
        ],
        check=True,
        timeout=120,
    )
    assert err.read_text() == ""
    assert (tmp_path / "rc").read_text().strip() in ("0", "141")
