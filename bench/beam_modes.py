"""Benchmark: Beam's DirectRunner in memory vs. multi-processing (2 workers) for the Beam components.

Not a test. Runs the whole pipeline cold on the full data (a fresh workdir each time) with a
token amount of training (the Trainer is not a Beam component and would only add noise), once per
mode and repeat, alternating the modes so a slow spell of the machine hits both, and prints the
medians (min–max) of ImdbExampleGen, StatisticsGen, Transform and Evaluator per mode.

    .venv/bin/python bench/beam_modes.py --repeats 3
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = {
    "in_memory": [],
    "multi_processing_2": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}
BEAM_COMPONENTS = ("ImdbExampleGen", "StatisticsGen", "Transform", "Evaluator")
TOKEN_TRAINING = ["--set", "epochs=1", "--set", "steps_per_epoch=20", "--set", "wide_tower=false",
                  "--set", "accuracy_threshold=0", "--set", "auc_threshold=0"]


def run(mode: str, repeat: int) -> dict:
    workdir = ROOT / f"workdir-bench-beam-{mode}-{repeat}"
    shutil.rmtree(workdir, ignore_errors=True)
    command = [sys.executable, str(ROOT / "bench" / "full_pipeline.py"), "--workdir", str(workdir), "--no-record",
               "--label", f"beam {mode}", *TOKEN_TRAINING, "--set", f"beam_args={json.dumps(MODES[mode])}"]
    print("running", " ".join(command), flush=True)
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)  # the test scoring after the run is not needed
    summary = json.loads((workdir / "run_summary.json").read_text())
    if summary["status"] != "succeeded":
        raise RuntimeError(f"the {mode} run did not succeed: {summary.get('error')}")
    shutil.rmtree(workdir / "pipeline_root", ignore_errors=True)
    return {"pipeline_seconds": summary["seconds"],
            "component_seconds": {name: info["seconds"] for name, info in summary["components"].items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {mode: [] for mode in MODES}
    for repeat in range(args.repeats):
        for mode in MODES:
            results[mode].append(run(mode, repeat))
    lines = ["| component | " + " | ".join(MODES) + " |", "|---|" + "---|" * len(MODES)]
    for component in BEAM_COMPONENTS + ("whole run",):
        cells = []
        for mode in MODES:
            values = [r["pipeline_seconds"] if component == "whole run" else r["component_seconds"][component]
                      for r in results[mode]]
            cells.append(f"{statistics.median(values):.0f} s ({min(values):.0f}–{max(values):.0f})")
        lines.append(f"| {component} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    (ROOT / "bench" / "beam_modes.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
