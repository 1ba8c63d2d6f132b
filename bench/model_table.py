"""Benchmark: the model families side by side, medians of several seeds, as one BENCHMARKS table.

Not a test. Each configuration runs the whole pipeline on the full data once per seed
(bench/full_pipeline.py in a fresh process, so memory and imports are that run's own), in one
workdir per configuration: the first seed pays ExampleGen, StatisticsGen and Transform, later
seeds take them from the cache, as a user re-training would. Every seed pushes into its own
serving folder and is blessed on the absolute floor only (baseline_margin 1), so each seed's own
model is the one scored on the test split. Results already on disk are reused: the table can be
filled over several invocations. TFX's own IMDB example (`--configs tfx_example`) runs
bench/tfx_imdb_example.py in a fresh workdir per run; it has no seed setting of its own, so its
"seeds" are simply repeated runs.

    .venv/bin/python bench/model_table.py --configs wide_and_deep improved_gru tfx_example --seeds 1 2 3
    .venv/bin/python bench/model_table.py --table-only      # aggregate what exists, write the table
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
GLOVE = ROOT.parent / "shared" / "data" / "glove" / "glove.6B.50d.top100k.txt.gz"
SEED_MODEL = ["--set", "gru_architecture=seed", "--set", "wide_tower=false", "--set", "vocab_size=10000",
              "--set", "max_tokens=400", "--set", "tail_share=0", "--set", "learning_rate=0.001",
              "--set", "learning_rate_schedule=constant"]  # the seed's model, preprocessing and training exactly
CONFIGS: Dict[str, Dict] = {
    "seed_gru": {"label": "seed GRU (the original model, random embedding)", "args": SEED_MODEL},
    "glove_gru": {"label": "seed GRU, GloVe-initialised", "args": SEED_MODEL + ["--pretrained-embeddings", str(GLOVE)]},
    "improved_gru": {"label": "improved GRU (pooled BiGRU, 30k vocabulary, 600 tokens head+tail, cosine 3e-3, GloVe)",
                     "args": ["--set", "wide_tower=false", "--pretrained-embeddings", str(GLOVE)]},
    "wide_and_deep": {"label": "wide and deep (improved GRU + NB uni/bigram tower) — the default",
                      "args": ["--pretrained-embeddings", str(GLOVE)]},
    "hub_wide": {"label": "Hub family (GloVe bag-of-embeddings module, fine-tuned) + NB uni/bigram tower",
                 "args": ["--model", "hub", "--hub-from-vectors", str(GLOVE), "--hub-trainable"]},
    "hub": {"label": "Hub family alone (GloVe module, fine-tuned)",
            "args": ["--model", "hub", "--hub-from-vectors", str(GLOVE), "--hub-trainable", "--set", "wide_tower=false"]},
}
PEER = "tfx_example"  # TFX's own IMDB example, bench/tfx_imdb_example.py
PEER_COMPONENTS = {"ImdbExampleGen": "CsvExampleGen"}  # its names where they differ from ours
COMPONENTS = ("ImdbExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "ServingCanary")


def workdir(name: str) -> Path:
    return ROOT / f"workdir-bench-{name.replace('_', '-')}"


def result_path(name: str, seed: int) -> Path:
    if name == PEER:
        return workdir(f"{name}-run{seed}") / "bench_result.json"
    return workdir(name) / f"bench_result-seed{seed}.json"


def results_of(name: str) -> List[dict]:
    if name == PEER:
        paths = sorted(ROOT.glob(f"{workdir(name).name}-run*/bench_result.json"))
    else:
        paths = sorted(p for p in workdir(name).glob("bench_result-seed*.json") if p.stem.rsplit("seed", 1)[1].isdigit())
    return [json.loads(p.read_text()) for p in paths]


def run(name: str, seed: int, tag: str = "") -> None:
    if name == PEER:
        command = [sys.executable, str(ROOT / "bench" / "tfx_imdb_example.py"), "--fresh", "--no-record",
                   "--workdir", str(result_path(name, seed).parent)]
        print("running", " ".join(command), flush=True)
        _run_for_result(command, result_path(name, seed))
        return
    wd = workdir(name)
    command = [sys.executable, str(ROOT / "bench" / "full_pipeline.py"), "--workdir", str(wd), "--seed", str(seed),
               *(["--tag", tag] if tag else []),
               "--label", CONFIGS[name]["label"], "--no-record", *CONFIGS[name]["args"],
               "--set", f"serving_dir={wd / f'serving-seed{seed}'}", "--set", "baseline_margin=1.0"]
    print("running", " ".join(command), flush=True)
    _run_for_result(command, result_path(name, seed) if not tag else None)


def _run_for_result(command: List[str], result: Optional[Path]) -> None:
    """Runs one benchmark process. A process that wrote its result and then died on the way out
    (TensorFlow's C++ teardown can SIGSEGV at exit) still counts; one that wrote nothing stops the table."""
    started = time.time()
    finished = subprocess.run(command, check=False)
    if finished.returncode != 0:
        if result is not None and result.exists() and result.stat().st_mtime >= started:
            print(f"warning: exit status {finished.returncode} after writing {result}; kept", flush=True)
            return
        raise subprocess.CalledProcessError(finished.returncode, command)


def spread(values: List[float], digits: int, scale: float = 1.0) -> str:
    values = [v * scale for v in values if v is not None]
    if not values:
        return "–"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f} (1 run)"
    return f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def row(label: str, results: List[dict], names: Dict[str, str]) -> str:
    """One table row; `names` maps our component names to the run's where they differ."""
    cold = [r for r in results if "Transform" not in r.get("cached", [])]
    seconds = [{ours: r["component_seconds"].get(names.get(ours, ours)) for ours in COMPONENTS}
               for r in results]
    cells = [label, str(len(results)),
             spread([r["test_accuracy"] for r in results], 4),
             spread([r.get("dedup_test_accuracy") for r in results], 4),
             spread([(r.get("eval") or {}).get("accuracy", r.get("eval_accuracy")) for r in results], 4)]
    for component in COMPONENTS:
        rows = [s for r, s in zip(results, seconds) if r in cold] \
            if component in ("ImdbExampleGen", "StatisticsGen", "Transform") else seconds
        cells.append(spread([s[component] for s in rows], 0))
        if component == "Evaluator":  # later seeds meet the first one's blessed model as baseline
            cells[-1] = spread([s[component] for r, s in zip(results, seconds) if r in cold], 0)
            cells.append(spread([s[component] for r, s in zip(results, seconds) if r not in cold], 0))
    cells.append(spread([r["pipeline_seconds"] for r in cold], 1, 1 / 60))
    peaks = [max(v for v in r["component_peak_rss_mib"].values() if v) if r.get("component_peak_rss_mib")
             else r.get("peak_rss_mib") for r in results]
    cells.append(spread(peaks, 1, 1 / 1024))
    return "| " + " | ".join(cells) + " |"


def table() -> str:
    header = ["configuration", "runs", "test acc.", "dedup. test acc.", "eval acc."] + \
             [f"{c} s" for c in COMPONENTS[:COMPONENTS.index("Evaluator")]] + \
             ["Evaluator s, one model", "Evaluator s, with baseline"] + \
             [f"{c} s" for c in COMPONENTS[COMPONENTS.index("Evaluator") + 1:]] + ["cold run min", "peak GiB (largest component)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    machine = date = None
    for name in [*CONFIGS, PEER]:
        results = results_of(name)
        if results:
            lines.append(row(CONFIGS[name]["label"] if name in CONFIGS else results[0]["label"], results,
                             PEER_COMPONENTS if name == PEER else {}))
            machine, date = results[0]["machine"], results[0]["date"]
    return "\n".join(lines) + (f"\n\nMachine: {machine}; date {date}. Medians with (min–max) over the runs (seeds); "
                               "ExampleGen, StatisticsGen and Transform over the cold runs only (later seeds take them "
                               "from the cache). TFX's example has no ServingCanary, and its peak is its whole run's "
                               "(one process).")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", default=[*CONFIGS, PEER], choices=[*CONFIGS, PEER])
    parser.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3])
    parser.add_argument("--table-only", action="store_true", help="run nothing; aggregate existing results")
    parser.add_argument("--rerun", action="store_true", help="run a seed again even if its result exists")
    parser.add_argument("--unchanged-rerun", action="store_true",
                        help="run each seed again exactly as before (the cache should serve it), result tagged rerun")
    args = parser.parse_args(argv)
    if not args.table_only:
        for name in args.configs:
            for seed in args.seeds:
                if args.unchanged_rerun and name != PEER:
                    run(name, seed, tag="rerun")
                elif args.rerun or not result_path(name, seed).exists():
                    run(name, seed)
    text = table()
    print(text)
    (ROOT / "bench" / "model_table.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
