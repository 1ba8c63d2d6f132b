"""Benchmark: loading a SavedModel and its examples signature (TFMA's) on a run's eval split.

Not a test. For each `--model`, in a fresh process per repeat (models alternating): the seconds
`tf.saved_model.load` takes, the first call (two reviews: the function's instantiation), and one
pass over the eval split in batches of each `--batch-sizes`; medians (min–max) of `--repeats`.
What models/function_library.py (pruned vs unpruned exports) and the Evaluator's regrouping
(batch size) were measured with.

    .venv/bin/python bench/signature.py --examples workdir/pipeline_root/ImdbExampleGen/examples/1 \\
        --model old/Format-Serving --model new/Format-Serving
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List


def measure(model_dir: str, examples_dir: str, batch_sizes: List[int]) -> Dict[str, float]:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    files = sorted(glob.glob(os.path.join(examples_dir, "Split-eval", "*")))
    records = [record.numpy() for record in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    started = time.perf_counter()
    signature = tf.saved_model.load(model_dir).signatures["serving_examples"]
    result = {"load": time.perf_counter() - started}
    started = time.perf_counter()
    signature(examples=tf.constant(records[:2]))
    result["first_call"] = time.perf_counter() - started
    for size in batch_sizes:
        started = time.perf_counter()
        for start in range(0, len(records), size):
            signature(examples=tf.constant(records[start:start + size]))
        result[f"pass_batch_{size}"] = time.perf_counter() - started
    result["reviews"] = len(records)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="a SavedModel folder (repeatable)")
    parser.add_argument("--examples", required=True, help="an ImdbExampleGen examples folder (its Split-eval)")
    parser.add_argument("--batch-sizes", nargs="*", type=int, default=[64, 256, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.model[0], args.examples, args.batch_sizes)))
        return 0
    runs: Dict[str, List[Dict[str, float]]] = {model: [] for model in args.model}
    for _ in range(args.repeats):
        for model in args.model:
            out = subprocess.run([sys.executable, __file__, "--child", "--model", model, "--examples", args.examples,
                                  "--batch-sizes", *map(str, args.batch_sizes)],
                                 check=True, capture_output=True, text=True).stdout
            runs[model].append(json.loads(out.strip().splitlines()[-1]))
    summary = {model: {key: {"median": round(statistics.median(r[key] for r in results), 2),
                             "min": round(min(r[key] for r in results), 2),
                             "max": round(max(r[key] for r in results), 2)}
                       for key in results[0] if key != "reviews"}
               for model, results in runs.items()}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
