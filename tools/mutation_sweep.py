"""A mutation sweep: does some test fail when one operator of the domain code is flipped?

    python tools/mutation_sweep.py src/omscore/returns/model.py src/omscore/money.py \
        [--per-file 12] [--seed 7] [--profile dev] [--timeout 150] [--out sweep.jsonl]

For a random sample of sites in each file (``--per-file`` of them, drawn with ``--seed``),
it flips one thing: a comparison (``<`` and ``<=``, ``==`` and ``!=``, ``in``, ``is``), a
``+``/``-``/``*``, ``and``/``or``, ``min``/``max``, or drops a ``not``. It runs the fast
domain tests (no SQLite, simulate, docs or benchmarks) with ``-x`` against a copy of the
source tree and records whether they failed. A mutant that survives is either a test gap
or a change that cannot be seen (a threshold for an index, a fast path that gives the same
answer): each needs a look. The tree is copied first, so the checkout is never touched.

Each mutant's line (in ``--out`` and on the console) names its site as file, line and
column, and gives the flipped expression as source: a line with two comparisons says which
one was flipped. The copy holds ``README.md`` too, for the tests that read it.

A mutant whose tests run past ``--timeout`` seconds counts as killed (it may hang), but
its line says ``"outcome": "timed out"``, not ``"failed"``: under load, Hypothesis
shrinking a real failure can take that long too, and so can a survivor's tests. Run those
again with a longer limit before you call them killed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMPARISONS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
ARITHMETIC: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
}
FAST_TESTS = [
    "tests",
    "--ignore-glob=tests/test_sqlite*",
    "--ignore=tests/test_store_contracts.py",
    "--ignore=tests/test_simulate.py",
    "--ignore=tests/test_benchmarks.py",
    "--ignore=tests/test_examples.py",
    "--ignore=tests/test_docs.py",
    "--ignore=tests/test_bench.py",
    "--ignore=tests/test_no_cyclic_garbage.py",
]

Site = tuple[str, int, int]  # kind, line, column
#: How the sweep's output line starts for each outcome.
LABELS = {"failed": "killed  ", "passed": "SURVIVED", "timed out": "TIMEOUT "}


def sites(tree: ast.AST) -> list[Site]:
    """Every place the sweep knows how to flip."""
    found: list[Site] = []
    for node in ast.walk(tree):
        kind = _kind(node)
        if kind is not None:
            found.append((kind, node.lineno, node.col_offset))  # type: ignore[attr-defined]
    return found


def _kind(node: ast.AST) -> str | None:
    if isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARISONS:
        return "compare"
    if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        return "arithmetic"
    if isinstance(node, ast.BoolOp):
        return "boolean"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return "min-max" if node.func.id in ("min", "max") else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return "not"
    return None


class Flip(ast.NodeTransformer):
    """Flips the node at one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.done = False
        #: The flipped expression as source, so that a line with two sites says which ran.
        self.became = ""

    def generic_visit(self, node: ast.AST) -> ast.AST:
        """Visit the children, then flip ``node`` if it is the site."""
        node = super().generic_visit(node)
        at = (getattr(node, "lineno", None), getattr(node, "col_offset", None))
        if self.done or at != self.site[1:] or _kind(node) != self.site[0]:
            return node
        self.done = True
        if isinstance(node, ast.Compare):
            node.ops[0] = COMPARISONS[type(node.ops[0])]()
        elif isinstance(node, ast.BinOp):
            node.op = ARITHMETIC[type(node.op)]()
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            node.func.id = "max" if node.func.id == "min" else "min"
        elif isinstance(node, ast.UnaryOp):
            node = node.operand
        self.became = ast.unparse(node)
        return node


def _limit_memory() -> None:
    """A mutant that loops while growing a list must not take the machine down."""
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def outcome(tree: Path, tests: list[str], profile: str, timeout: float) -> str:
    """``"failed"`` (a blow-up too), ``"passed"`` or ``"timed out"``: what ``tests``
    (pytest arguments) did on ``tree``."""
    environment = {**os.environ, "PYTHONPATH": str(tree / "src"), "HYPOTHESIS_PROFILE": profile}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        run = subprocess.run(
            command,
            cwd=tree,
            env=environment,
            capture_output=True,
            timeout=timeout,
            preexec_fn=_limit_memory,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "timed out"
    return "passed" if run.returncode == 0 else "failed"


def killed(tree: Path, tests: list[str], profile: str, timeout: float) -> bool:
    """Whether ``tests`` fail on ``tree``; running past ``timeout`` counts as failing."""
    return outcome(tree, tests, profile, timeout) != "passed"


def sweep(
    files: list[str],
    per_file: int,
    seed: int,
    tests: list[str],
    profile: str,
    out: Path,
    timeout: float = 150,
) -> None:
    """Mutate a sample of each file's sites in a copy of the tree; one JSON line each."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as scratch, out.open("a") as results:
        tree = Path(scratch) / "tree"
        shutil.copytree(ROOT / "src", tree / "src")
        shutil.copytree(ROOT / "tests", tree / "tests")
        shutil.copy(ROOT / "pyproject.toml", tree)
        shutil.copy(ROOT / "README.md", tree)  # the simulate tests check its sample report
        if killed(tree, tests, profile, timeout=600):
            # Else every mutant would count as killed (pytest also fails on no tests).
            raise SystemExit("the tests fail (or select nothing) before any mutation")
        for name in files:
            path = tree / name
            source = path.read_text()
            chosen = sites(ast.parse(source))
            for site in rng.sample(chosen, min(per_file, len(chosen))):
                flip = Flip(site)
                mutated = flip.visit(ast.parse(source))
                if not flip.done:
                    continue
                path.write_text(ast.unparse(mutated))
                start = time.monotonic()
                try:
                    result = outcome(tree, tests, profile, timeout)
                finally:
                    path.write_text(source)
                dead = result != "passed"
                record = {
                    "file": name,
                    "kind": site[0],
                    "line": site[1],
                    "column": site[2],
                    "mutant": flip.became,
                    "killed": dead,
                    "outcome": result,
                    "code": source.splitlines()[site[1] - 1].strip(),
                    "seconds": round(time.monotonic() - start, 1),
                }
                print(json.dumps(record), file=results, flush=True)
                print(f"{LABELS[result]} {name}:{site[1]}:{site[2]} {record['code']}")
                print(f"           became: {flip.became}")


def main() -> None:
    """Parse the arguments and sweep."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="source files, relative to the project root")
    parser.add_argument("--per-file", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", default="dev", help="Hypothesis profile for the tests")
    parser.add_argument(
        "--tests",
        default=" ".join(FAST_TESTS),
        help="pytest arguments (default: the fast domain tests; a store's mutants need "
        "tests/test_store_contracts.py)",
    )
    parser.add_argument("--out", type=Path, default=Path("mutation-sweep.jsonl"))
    parser.add_argument(
        "--timeout",
        type=float,
        default=150,
        help="seconds a mutant's tests may run; past it the mutant counts as killed, "
        'marked "timed out"',
    )
    args = parser.parse_args()
    sweep(
        args.files,
        args.per_file,
        args.seed,
        args.tests.split(),
        args.profile,
        args.out,
        args.timeout,
    )


if __name__ == "__main__":
    main()
