"""Run every benchmark script in this folder in turn and print their figures.

Usage: ``.venv/bin/python benchmarks/run_all.py`` (or ``make bench``). Each ``bench_*.py`` is a
stand-alone script that prints its own figures; run one directly to reproduce a single number.
Figures depend on the machine: the README's figures were measured on a 2-core, 24 GiB machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    failures = 0
    for script in sorted(here.glob("bench_*.py")):
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)])
        print(f"--- {script.name}: exit {rc}, {time.perf_counter() - t0:.1f} s", flush=True)
        failures += rc != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
