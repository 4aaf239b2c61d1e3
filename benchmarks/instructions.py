"""Instructions per order of place + allocate on MemoryStore, counted by callgrind.

    python benchmarks/instructions.py [--small 300] [--large 1300] [--sqlite]

Wall-clock figures on a shared machine move by 10-25 % from run to run; an instruction
count does not. This runs the order stream of benchmarks/store.py twice under
``valgrind --tool=callgrind`` (the cyclic collector off), with ``--small`` and ``--large``
orders, and prints the difference in instructions divided by the difference in orders, so
the set-up both runs share cancels out. The runs use ``PYTHONHASHSEED=0`` (unless it is
set): randomised string hashing alone moves the count by up to 0.6 %. With ``--sqlite``
the orders go to a fresh ``SqliteStore`` file instead (SQLite's own code counted too; the
time the kernel spends writing the file is not). Needs valgrind; takes about a minute
(``--sqlite``: use ``--small 100 --large 400``, three minutes). With ``--by-library`` it
also splits the count per order by the file the instructions ran in: the Python
interpreter, SQLite's library, the C library, orjson ...
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.bench import place_and_allocate, prepared
from omscore.ports import Store


def child(orders: int, sqlite: bool) -> None:
    """Place and allocate ``orders`` orders (the run callgrind counts)."""
    with tempfile.TemporaryDirectory() as directory:
        store: Store = SqliteStore(str(Path(directory) / "count.db")) if sqlite else MemoryStore()
        oms, drafts = prepared(store)
        gc.disable()
        place_and_allocate(oms, drafts[:orders])


def counted(orders: int, sqlite: bool) -> tuple[int, Counter[str]]:
    """Instructions callgrind counts for a run of ``orders`` orders, in all and by the file
    (executable or shared library) they ran in."""
    with tempfile.TemporaryDirectory() as directory:
        profile = Path(directory) / "callgrind.out"
        total = _callgrind(orders, sqlite, profile)
        return total, by_library(profile.read_text(encoding="utf-8", errors="replace"))


def _callgrind(orders: int, sqlite: bool, profile: Path) -> int:
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={profile}",
            sys.executable,
            __file__,
            "--child",
            str(orders),
            *(["--sqlite"] if sqlite else []),
        ],
        capture_output=True,
        text=True,
        check=True,
        # String hashing is randomised per process; it moves the count by up to 0.6 %.
        env={**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")},
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def by_library(profile: str) -> Counter[str]:
    """Instructions per file name in a callgrind profile: the self cost of each function,
    summed by the object (``ob=``) it belongs to. Each ``calls=`` line is followed by the
    inclusive cost of that call, which belongs to the callee and is skipped."""
    names: dict[str, str] = {}
    costs: Counter[str] = Counter()
    current = ""
    after_call = False
    for line in profile.splitlines():
        if line.startswith("ob="):
            current = _compressed_name(line[3:], names)
        elif line.startswith("cob="):
            _compressed_name(line[4:], names)  # defines a name later lines may refer to
        elif line.startswith("calls="):
            after_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
                continue
            fields = line.split()
            if len(fields) > 1:
                costs[Path(current).name] += int(fields[1])
    return costs


def _compressed_name(text: str, names: dict[str, str]) -> str:
    """A callgrind name: ``(id) name`` defines the id, ``(id)`` alone refers to it."""
    found = re.match(r"\((\d+)\)(?: (.*))?", text)
    if found is None:
        return text
    if found.group(2):
        names[found.group(1)] = found.group(2)
    return names.get(found.group(1), text)


def main() -> None:
    """Both runs, and the difference per order."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large", type=int, default=1_300)
    parser.add_argument("--sqlite", action="store_true", help="count on SqliteStore")
    parser.add_argument(
        "--by-library",
        action="store_true",
        help="also split the count per order by the library the instructions ran in",
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.sqlite)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    (small, small_libraries), (large, large_libraries) = (
        counted(args.small, args.sqlite),
        counted(args.large, args.sqlite),
    )
    orders = args.large - args.small
    per_order = (large - small) / orders
    store, flag = ("SqliteStore", " --sqlite") if args.sqlite else ("MemoryStore", "")
    flag += " --by-library" if args.by_library else ""
    print(
        f"omscore instructions per order (place + allocate, {store}, collector off): "
        f"{per_order:,.0f}; reproduce: python benchmarks/instructions.py "
        f"--small {args.small} --large {args.large}{flag}"
    )
    if args.by_library:
        large_libraries.subtract(small_libraries)
        for library, count in large_libraries.most_common():
            if count / orders >= 1_000:
                print(f"  {count / orders:>12,.0f}  {library}")


if __name__ == "__main__":
    main()
