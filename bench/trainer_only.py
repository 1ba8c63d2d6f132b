"""Benchmark: the Trainer alone on an existing Transform output, for tuning on the eval split.

Not a test. Calls models.trainer.run_fn (nothing mocked but the export and the embedding report,
which tuning does not need) on the transformed train/eval splits of a finished run, with the
default Trainer settings of PipelineConfig plus `--set NAME=JSON` overrides, and prints the best
evaluation round's eval loss and accuracy. The test split is never read.

    .venv/bin/python bench/trainer_only.py --workdir workdir-bench-improved-gru --seed 1 --set epochs=4
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recording import numbered  # noqa: E402

GLOVE = ROOT.parent / "shared" / "data" / "glove" / "glove.6B.50d.top100k.txt.gz"


def newest(folder: Path) -> Path:
    return numbered(folder)[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a workdir whose Transform has run (its newest output)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=JSON", help="a Trainer setting")
    args = parser.parse_args()

    from tfx.components.trainer.fn_args_utils import FnArgs  # pylint: disable=import-outside-toplevel

    import models.trainer as trainer  # pylint: disable=import-outside-toplevel
    from pipeline.configs.pipeline_config import PipelineConfig  # pylint: disable=import-outside-toplevel
    from pipeline.pipeline import trainer_settings  # pylint: disable=import-outside-toplevel

    overrides = {name: json.loads(value) for name, value in (item.split("=", 1) for item in args.set)}
    config = PipelineConfig(**{"data_root": ".", "workdir": args.workdir, "seed": args.seed, "wide_tower": False,
                               "pretrained_embeddings": str(GLOVE), **overrides})
    transform = Path(args.workdir).resolve() / "pipeline_root" / "Transform"
    examples = newest(transform / "transformed_examples")
    out = Path(tempfile.mkdtemp(prefix="trainer-only-"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    trainer.export_serving_model = lambda *_, **__: None     # tuning needs the history, not a SavedModel
    trainer._write_embedding_report = lambda *_, **__: None  # pylint: disable=protected-access
    started = time.time()
    trainer.run_fn(FnArgs(train_files=[str(examples / "Split-train" / "*")], eval_files=[str(examples / "Split-eval" / "*")],
                          transform_output=str(newest(transform / "transform_graph")),
                          custom_config=trainer_settings(config), model_run_dir=str(out / "run"),
                          serving_model_dir=str(out / "serving")))
    history = json.loads((out / "run" / trainer.HISTORY_FILE).read_text())
    best = history["history"][history["best_round"] - 1]
    print(json.dumps({"seed": args.seed, "settings": overrides, "best_round": history["best_round"],
                      "best_epoch": best["epoch"], "val_loss": round(best["val_loss"], 4),
                      "val_accuracy": round(best["val_accuracy"], 4), "seconds": round(time.time() - started)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
