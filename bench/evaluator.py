"""Benchmark: TFX's Evaluator alone on a finished run's eval split, with and without a baseline.

Not a test. Runs tfx.components.evaluator.executor.Executor (what the pipeline's Evaluator
runs, with the pipeline's eval_config and Beam settings) on the newest ImdbExampleGen output
of `--workdir`, its newest Trainer model as the candidate and, with `--baseline`, the model
before it as the baseline, with `--beam-arg` options as `run --beam-arg` would pass them. Prints
the wall time of each repeat and their median; `--profile` prints where the first repeat's time
went (cProfile, cumulative, top 25).

    .venv/bin/python bench/evaluator.py --workdir workdir-bench-wide-and-deep --baseline --repeats 3
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recording import numbered  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a workdir whose pipeline has run (twice, for --baseline)")
    parser.add_argument("--baseline", action="store_true", help="also score the Trainer's previous model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--default-extractors", action="store_true",
                        help="TFMA's extractors as they are, without the pipeline's module_path")
    parser.add_argument("--beam-arg", dest="beam_args", action="append", default=[], help="a Beam pipeline option")
    args = parser.parse_args()

    from tfx.components.evaluator.executor import Executor  # pylint: disable=import-outside-toplevel
    from tfx.types import standard_artifacts  # pylint: disable=import-outside-toplevel
    from tfx.utils import proto_utils  # pylint: disable=import-outside-toplevel

    from pipeline.pipeline import EVALUATOR_MODULE, eval_config  # pylint: disable=import-outside-toplevel

    root = Path(args.workdir).resolve() / "pipeline_root"
    examples = standard_artifacts.Examples()
    examples.uri = str(numbered(root / "ImdbExampleGen" / "examples")[-1])
    examples.split_names = json.dumps(["train", "eval"])
    models = numbered(root / "Trainer" / "model")
    inputs = {"examples": [examples], "model": [standard_artifacts.Model()]}
    inputs["model"][0].uri = str(models[-1])
    if args.baseline:
        if len(models) < 2:
            parser.error(f"{root / 'Trainer' / 'model'} holds one model: run the pipeline again with another seed")
        inputs["baseline_model"] = [standard_artifacts.Model()]
        inputs["baseline_model"][0].uri = str(models[-2])
    properties = {"eval_config": proto_utils.proto_to_json(eval_config()), "example_splits": json.dumps(["eval"])}
    if not args.default_extractors:
        properties["module_path"] = EVALUATOR_MODULE

    seconds = []
    for repeat in range(args.repeats):
        out = Path(tempfile.mkdtemp(prefix="evaluator-bench-"))
        outputs = {"evaluation": [standard_artifacts.ModelEvaluation()], "blessing": [standard_artifacts.ModelBlessing()]}
        outputs["evaluation"][0].uri, outputs["blessing"][0].uri = str(out / "evaluation"), str(out / "blessing")
        profiler = cProfile.Profile() if args.profile and repeat == 0 else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        Executor(Executor.Context(beam_pipeline_args=list(args.beam_args), tmp_dir=str(out / "tmp"),
                                  unique_id="bench")).Do(inputs, outputs, properties)
        if profiler:
            profiler.disable()
        seconds.append(time.perf_counter() - started)
        print(f"repeat {repeat + 1}: {seconds[-1]:.1f} s", flush=True)
        if profiler:
            profiler.dump_stats(str(out / "evaluator.prof"))
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            print(f"whole profile: {out / 'evaluator.prof'} (python -m pstats)", flush=True)
    print(json.dumps({"workdir": args.workdir, "baseline": args.baseline, "beam_args": args.beam_args,
                      "default_extractors": args.default_extractors,
                      "seconds": [round(s, 1) for s in seconds],
                      "median": round(statistics.median(seconds), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
