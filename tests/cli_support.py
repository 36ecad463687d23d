"""Run the real ``synthembed`` console script in a subprocess (shared by tests/test_cli*.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(sys.executable).with_name("synthembed")


def run(
    *args: str | Path, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``synthembed ARGS...``; stdout and stderr captured as text (not a terminal)."""
    if not SCRIPT.exists():
        pytest.skip("the synthembed console script is not installed next to this Python")
    env = {**os.environ, "SYNTHEMBED_CACHE_DIR": str(cwd or Path.cwd()), "COLUMNS": "100"}
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )


def ok_json(*args: str | Path, cwd: Path | None = None) -> Any:
    """Run with ``--json``, expect exit code 0 and return the parsed document."""
    done = run(*args, "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def user_error(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """Exit ``code``, no traceback, and one error line holding every needle."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    err = done.stderr.strip()
    for needle in needles:
        assert needle in err, err
    if code == 1:
        assert len(err.splitlines()) == 1, err
        assert err.startswith("error: ")


def gensim_data(name: str) -> Path:
    """A file of gensim's shipped test data (real vectors and benchmark files)."""
    utils = pytest.importorskip("gensim.test.utils")
    return Path(utils.datapath(name))
