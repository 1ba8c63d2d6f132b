"""Benchmark: how long a fresh Python process of the project's venv takes to import TFX, TFMA and Beam.

Not a test. Each repeat starts a new interpreter (what every pipeline run, CLI call, canary and
test subprocess does) with the installed bytecode, and one with it hidden: a
PYTHONPYCACHEPREFIX pointing at an empty folder plus PYTHONDONTWRITEBYTECODE=1 makes Python
compile every module from source, as a venv synced without `--compile-bytecode` does on
machines that set PYTHONDONTWRITEBYTECODE. The two kinds alternate; medians and spread printed.

    .venv/bin/python bench/imports.py --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

IMPORTS = "import tfx.v1, tensorflow_model_analysis, apache_beam"


def seconds(env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = {"installed bytecode": [], "compiled from source": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as empty:
            times["installed bytecode"].append(seconds(dict(os.environ)))
            times["compiled from source"].append(seconds({**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
                                                          "PYTHONPYCACHEPREFIX": empty}))
    print(json.dumps({kind: {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
                             "max": round(max(values), 1)} for kind, values in times.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
