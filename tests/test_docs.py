"""Docs that run: every ```python block of the README and docs/ executes, in order, per file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_documentation_code_runs(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The python blocks of one page run top to bottom in one namespace."""
    blocks = BLOCK.findall(path.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"doc_{path.stem}"}
    for number, block in enumerate(blocks, start=1):
        code = compile(block, f"{path.name} block {number}", "exec")
        exec(code, namespace)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_run(path: Path) -> None:
    """Each example runs as a script and exits 0."""
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr


def test_documentation_and_examples_type_check(tmp_path: Path) -> None:
    """What users copy passes ``mypy --strict``: each page's python blocks, as one module,
    and every example (ids and keys given as plain strings included)."""
    modules = []
    for path in DOCS:
        blocks = BLOCK.findall(path.read_text(encoding="utf-8"))
        if blocks:
            module = tmp_path / f"doc_{path.stem.lower()}.py"
            module.write_text("\n".join(blocks), encoding="utf-8")
            modules.append(str(module))
    report, errors, status = mypy_api.run(
        ["--strict", "--no-error-summary", *modules, *map(str, EXAMPLES)]
    )
    assert status == 0, report + errors
