"""Every code block of the documentation site runs as written.

In each page, the ```python blocks run in order in one namespace, and the
```bash blocks run in order in one shell (``set -e``), in a fresh folder, with
the ``synthembed`` command and this Python first on the PATH. Blocks in
```text are output or long runs (``synthembed demo``) and are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", flags=re.S | re.M)


def blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def test_every_guide_has_a_runnable_example() -> None:
    guides = [p for p in PAGES if p.startswith("guides/")]
    assert len(guides) >= 9
    for page in guides:
        assert blocks(page, "python"), f"{page} has no ```python example"


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")])
def test_python_blocks_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs"}
    for i, block in enumerate(blocks(page, "python")):
        exec(compile(block, f"docs/{page} block {i + 1}", "exec"), namespace)


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "bash")])
def test_shell_blocks_run(page: str, tmp_path: Path) -> None:
    pytest.importorskip("typer")
    bin_dir = str(Path(sys.executable).parent)
    if not (Path(bin_dir) / "synthembed").exists():
        pytest.skip("the synthembed console script is not installed next to this Python")
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env["SYNTHEMBED_CACHE_DIR"] = str(tmp_path / "cache")
    script = "set -e\n" + "\n".join(blocks(page, "bash"))
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
