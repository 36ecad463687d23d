"""The house rules of DESIGN.md, checked on the source tree.

- imports point down: no import cycle among the package's modules;
- a module holds one concept: none exceeds 700 lines;
- speed tricks live in ``_kernels/``: no ``sys.getrefcount``, private torch
  calls or thread-count changes elsewhere.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "synthembed"
KERNELS = PACKAGE / "_kernels"
MAX_LINES = 700
FORBIDDEN = {
    "sys.getrefcount": re.compile(r"\bgetrefcount\b"),
    "torch._C.": re.compile(r"torch\._C\."),
    "torch.ops.aten": re.compile(r"torch\.ops\.aten"),
    "set_num_threads": re.compile(r"\bset_num_threads\b"),
    "a private tensor attribute (._version)": re.compile(r"\._version\b"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Package modules imported when ``name`` is imported (function bodies and
    ``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                submodules = {f"{target}.{alias.name}" for alias in node.names} & known
                found.update(submodules or {target})

    visit(tree.body)
    resolved = set()
    for target in found:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    # Importing a.b.c imports the packages a and a.b first.
    for target in list(resolved):
        parts = target.split(".")
        resolved.update(
            ".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in known
        )
    # The packages above ``name`` are already being imported when it runs.
    parts = name.split(".")
    resolved -= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return resolved


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def strong(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycle() -> None:
    modules = _modules()
    known = set(modules)
    graph = {name: _module_level_imports(name, path, known) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_under_700_lines(name: str) -> None:
    path = _modules()[name]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(SRC)} has {lines} lines (> {MAX_LINES})"


def test_speed_tricks_live_only_in_kernels() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if KERNELS in path.parents:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(SRC)}:{number}: {what}")
    assert offenders == []


def test_no_importlib_reach_into_the_package() -> None:
    """``importlib`` is for optional third-party packages and the lazy names of
    ``synthembed/__init__.py``, never a way around an import cycle."""
    pattern = re.compile(r"import_module\(\s*[\"']synthembed")
    offenders = [
        str(path.relative_to(SRC))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "__init__.py" and pattern.search(path.read_text())
    ]
    assert offenders == []
