"""Benchmark: does a seed repeat its training, and what does enable_op_determinism cost?

Not a test. Trains the model (models.trainer.run_fn, the real Trainer code) twice without and
twice with `deterministic_ops` on an existing full-data Transform output (a benchmark workdir's
pipeline_root), each in a fresh process, for a fixed number of steps, and compares: the eval
loss and accuracy after training (identical or not within a mode) and the training time.

    .venv/bin/python bench/determinism.py --workdir workdir-bench-wide-and-deep --steps 200
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GLOVE = ROOT.parent / "shared" / "data" / "glove" / "glove.6B.50d.top100k.txt.gz"

CHILD = r'''
import glob, json, sys, time
ROOT, WORKDIR, OUT, GLOVE, STEPS, DETERMINISTIC = sys.argv[1:5] + [int(sys.argv[5]), sys.argv[6] == "1"]
sys.path.insert(0, ROOT)
from tfx.components.trainer.fn_args_utils import FnArgs
from models import trainer
from pipeline.configs import PipelineConfig
from pipeline.pipeline import trainer_settings

newest = lambda pattern: max(glob.glob(pattern), key=lambda path: int(path.rstrip("/").rsplit("/", 1)[1]))
examples = newest(WORKDIR + "/pipeline_root/Transform/transformed_examples/*/")
config = PipelineConfig(data_root="unused", workdir=OUT, pretrained_embeddings=GLOVE, wide_tower=False, epochs=1,
                        evaluations_per_epoch=1, steps_per_epoch=STEPS, early_stopping_patience=0,
                        deterministic_ops=DETERMINISTIC)
args = FnArgs(train_files=[examples + "Split-train/*"], eval_files=[examples + "Split-eval/*"],
              transform_output=newest(WORKDIR + "/pipeline_root/Transform/transform_graph/*"),
              serving_model_dir=OUT + "/serving", model_run_dir=OUT + "/run", custom_config=trainer_settings(config))
started = time.time()
trainer.run_fn(args)
seconds = time.time() - started
history = json.load(open(OUT + "/run/training_history.json"))["history"][-1]
print("RESULT " + json.dumps({"seconds": seconds, "val_loss": history["val_loss"], "val_accuracy": history["val_accuracy"]}))
'''


def train(workdir: Path, steps: int, deterministic: bool) -> dict:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(workdir), out, str(GLOVE), str(steps),
                               "1" if deterministic else "0"], capture_output=True, text=True, check=True)
    line = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a benchmark workdir whose Transform ran on the full data")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    results = {}
    for deterministic in (False, True, False, True):  # interleaved: a slow spell hits both
        results.setdefault(deterministic, []).append(train(workdir, args.steps, deterministic))
        print(deterministic, results[deterministic][-1], flush=True)
    report = {}
    for deterministic, runs in results.items():
        report["deterministic" if deterministic else "default"] = {
            "seconds": [round(r["seconds"], 1) for r in runs],
            "median_seconds": round(statistics.median(r["seconds"] for r in runs), 1),
            "val_loss": [r["val_loss"] for r in runs],
            "repeats_exactly": len({(r["val_loss"], r["val_accuracy"]) for r in runs}) == 1,
        }
    report["cost"] = round(report["deterministic"]["median_seconds"] / report["default"]["median_seconds"], 2)
    report.update(steps=args.steps, date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report, indent=1))
    (ROOT / "bench" / "determinism.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
