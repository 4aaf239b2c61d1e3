"""What omscore needs installed: the core runs on its declared dependencies alone, and the
test tools (the contract kit, the strategies) come with the ``testing`` extra."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "omscore"
TEST_TOOLS = ("omscore.testing.contract", "omscore.testing.strategies")


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _names(requirements: object) -> set[str]:
    """Distribution names of requirement strings ("pytest>=8.0" -> "pytest")."""
    assert isinstance(requirements, list)
    return {re.split(r"[<>=!~\[ ;]", str(r), maxsplit=1)[0].lower() for r in requirements}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _third_party_imports(path: Path) -> set[str]:
    """Top-level names of what the module imports, other than the standard library and
    omscore itself."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"omscore"}


def _run_without(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing ``blocked`` fails, as it would
    where they are not installed."""
    block = "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    return subprocess.run(
        [sys.executable, "-c", f"import sys\n{block}{code}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_every_module_imports_only_what_is_declared_for_it() -> None:
    project = _project()
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    core = _names(project["dependencies"]) | _names(extras["speedups"])
    testing = core | _names(extras["testing"])
    undeclared = {
        _module_name(path): sorted(imported - (testing if name in TEST_TOOLS else core))
        for path in sorted(PACKAGE.rglob("*.py"))
        if (imported := _third_party_imports(path)) and (name := _module_name(path))
    }
    assert {module: names for module, names in undeclared.items() if names} == {}
    assert _third_party_imports(PACKAGE / "testing" / "contract.py") >= {"pytest", "hypothesis"}


def test_the_dev_extra_installs_the_testing_extra() -> None:
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    assert _names(extras["testing"]) == {"pytest", "hypothesis"}
    assert any(re.fullmatch(r"omscore\[.*\btesting\b.*\]", r) for r in extras["dev"])


def test_the_core_runs_without_the_test_tools() -> None:
    modules = sorted(
        name
        for path in PACKAGE.rglob("*.py")
        if (name := _module_name(path)) not in TEST_TOOLS and name != "omscore.__main__"
    )
    run = _run_without(
        ("pytest", "hypothesis"),
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from omscore.__main__ import main\n"
        "raise SystemExit(main(['simulate', '--memory', '--orders', '40']))\n",
    )
    assert run.returncode == 0, run.stderr
    assert "stock conserved                 yes" in run.stdout


@pytest.mark.parametrize(
    ("module", "blocked", "needs"),
    [
        ("omscore.testing.contract", "hypothesis", "pytest and Hypothesis"),
        ("omscore.testing.contract", "pytest", "pytest and Hypothesis"),
        ("omscore.testing.strategies", "hypothesis", "Hypothesis"),
    ],
)
def test_a_test_tool_without_its_package_names_the_extra(
    module: str, blocked: str, needs: str
) -> None:
    run = _run_without(
        (blocked,),
        f"try:\n    import {module}\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error.name)\n    print(error)\n",
    )
    assert run.returncode == 0, run.stderr
    name, message = run.stdout.splitlines()
    assert name == blocked
    assert message == (
        f'{module} needs {needs}, and {blocked!r} is not installed: pip install "omscore[testing]"'
    )
