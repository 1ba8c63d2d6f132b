"""Benchmark: TFX's own IMDB example (tfx.examples.imdb, native Keras) on the real IMDB data.

A reference point for our pipeline, not a test. Runs the installed example's `_create_pipeline`
with its own module file (imdb_utils_native_keras.py), components, Trainer steps, eval config and
Beam args on ../shared/data/imdb/train.csv.gz, then scores the pushed model on the 25,000 test
reviews. Prints the result, writes <workdir>/bench_result.json and appends to BENCHMARKS.md.

    .venv/bin/python bench/tfx_imdb_example.py --fresh
    .venv/bin/python bench/tfx_imdb_example.py --max-reviews 400 --workdir /tmp/wd --fresh --no-record  # smoke
"""
from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads (also in Beam workers)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recording import append_section, machine, numbered, peak_rss_mib  # noqa: E402
DATA = ROOT.parent / "shared" / "data" / "imdb"
LABEL = "TFX's IMDB example (tfx 1.16, native Keras)"
PIPELINE_NAME = "imdb_native_keras"  # the example's own name


def read_csv(path: str, limit: Optional[int]) -> List[Tuple[str, int]]:
    """(text, label) rows of a gzip `text,label` CSV; texts hold commas, quotes and newlines."""
    csv.field_size_limit(sys.maxsize)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [(row["text"], int(row["label"])) for row in reader]
    return rows[:limit] if limit else rows



def run_example(data_dir: Path, workdir: Path) -> str:
    """Runs the example's pipeline with LocalDagRunner (BeamDagRunner if that fails, from scratch);
    returns the runner's name. All outputs under the workdir, none under $HOME."""
    from tfx.examples.imdb import imdb_pipeline_native_keras as example  # pylint: disable=import-outside-toplevel
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner  # pylint: disable=import-outside-toplevel

    def pipeline():
        (workdir / "metadata").mkdir(parents=True, exist_ok=True)
        return example._create_pipeline(  # pylint: disable=protected-access
            pipeline_name=PIPELINE_NAME, pipeline_root=str(workdir / "pipeline_root"), data_root=str(data_dir),
            module_file=os.path.join(os.path.dirname(example.__file__), "imdb_utils_native_keras.py"),
            serving_model_dir=str(workdir / "serving"), metadata_path=str(workdir / "metadata" / "metadata.db"),
            beam_pipeline_args=example._beam_pipeline_args)  # pylint: disable=protected-access
    try:
        LocalDagRunner().run(pipeline())
        return "LocalDagRunner"
    except Exception as error:  # pylint: disable=broad-except
        print(f"LocalDagRunner failed ({type(error).__name__}: {error}); retrying with BeamDagRunner", file=sys.stderr)
        for name in ("pipeline_root", "metadata", "serving"):
            shutil.rmtree(workdir / name, ignore_errors=True)
        example.BeamDagRunner().run(pipeline())
        return "BeamDagRunner (LocalDagRunner failed)"


def read_metadata(workdir: Path) -> Tuple[Dict[str, float], Optional[bool], Optional[float]]:
    """Per-node seconds (execution create -> last update in ML Metadata, newest pipeline run),
    whether the Evaluator blessed, and its overall eval BinaryAccuracy."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel
    from ml_metadata.metadata_store import metadata_store  # pylint: disable=import-outside-toplevel
    from tfx.orchestration import metadata  # pylint: disable=import-outside-toplevel

    store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(str(workdir / "metadata" / "metadata.db")))
    run = max(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.create_time_since_epoch)
    node_type = store.get_context_type("node").id
    seconds = {}
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.create_time_since_epoch):
        nodes = [c.name for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type]
        node = nodes[0].split(".", 1)[-1] if nodes else execution.name
        seconds[node] = round((execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000, 1)
    types = {t.id: t.name for t in store.get_artifact_types()}
    artifacts = {types[a.type_id]: a for a in store.get_artifacts_by_context(run.id)}
    blessed, accuracy = None, None
    if "ModelBlessing" in artifacts:
        blessed = bool(artifacts["ModelBlessing"].custom_properties["blessed"].int_value)
    if "ModelEvaluation" in artifacts:
        for metrics in tfma.load_metrics(artifacts["ModelEvaluation"].uri):
            if not metrics.slice_key.single_slice_keys:  # the overall slice
                for item in metrics.metric_keys_and_values:
                    if item.key.name == "binary_accuracy" and not item.key.is_diff:
                        accuracy = round(item.value.double_value.value, 4)
    return seconds, blessed, accuracy


def score_test(model_dir: Path, test: List[Tuple[str, int]], batch_size: int = 256) -> float:
    """Test accuracy through the pushed model's `serving_default` signature. That signature takes
    serialized tf.Examples (input `examples`), parses only `text` (the module pops the label from the
    feature spec, so no label is fed) and returns the Dense(1) output: a logit, not a probability
    (the model is compiled with from_logits=True). Predicted 1 = sigmoid(logit) >= 0.5."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    serve = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1].keys()
    (output_key,) = serve.structured_outputs.keys()
    print(f"serving_default: {input_name} -> {output_key} {serve.structured_outputs[output_key]}", file=sys.stderr)
    correct = 0
    for start in range(0, len(test), batch_size):
        batch = test[start:start + batch_size]
        examples = [tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))})).SerializeToString() for text, _ in batch]
        logits = serve(**{input_name: tf.constant(examples)})[output_key].numpy().reshape(-1)
        predicted = (1.0 / (1.0 + np.exp(-logits)) >= 0.5).astype(int)
        correct += int(sum(int(p) == label for p, (_, label) in zip(predicted, batch)))
    return round(correct / len(test), 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-csv", default=str(DATA / "train.csv.gz"))
    parser.add_argument("--test-csv", default=str(DATA / "test.csv.gz"))
    parser.add_argument("--workdir", default=str(ROOT / "workdir-bench-tfx-example"))
    parser.add_argument("--fresh", action="store_true", help="delete the workdir first")
    parser.add_argument("--max-reviews", type=int, help="first N train and N test rows only (a smoke check)")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()

    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    import keras  # pylint: disable=import-outside-toplevel

    absl_logging.set_verbosity(absl_logging.WARNING)
    keras.config.disable_interactive_logging()  # the in-process Trainer's 500-step progress bar -> absl INFO
    workdir = Path(args.workdir).resolve()
    if args.fresh:
        shutil.rmtree(workdir, ignore_errors=True)
    data_dir = workdir / "data"  # CsvExampleGen reads every file of a folder, uncompressed
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "train.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(read_csv(args.train_csv, args.max_reviews))

    started = time.time()
    runner = run_example(data_dir, workdir)
    pipeline_seconds = time.time() - started
    component_seconds, blessed, eval_accuracy = read_metadata(workdir)
    versions = numbered(workdir / "serving") if (workdir / "serving").exists() else []
    test = read_csv(args.test_csv, args.max_reviews)
    result = {
        "label": LABEL,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "runner": runner,
        "pipeline_seconds": round(pipeline_seconds, 1),
        "component_seconds": component_seconds,
        "peak_rss_mib": None,  # filled in after test scoring
        "blessed": blessed,
        "pushed": bool(versions),
        "eval_accuracy": eval_accuracy,
        "test_accuracy": score_test(versions[-1], test) if versions else None,
        "test_reviews": len(test),
        "pushed_model": str(versions[-1]) if versions else None,
    }
    result["peak_rss_mib"] = round(peak_rss_mib(), 0)
    print(json.dumps(result, indent=2))
    (workdir / "bench_result.json").write_text(json.dumps(result, indent=2))
    if not args.no_record:
        append_markdown(result)
    return 0


def append_markdown(result: dict) -> None:
    components = ", ".join(f"{k} {v:.0f}s" for k, v in result["component_seconds"].items())
    ev = "n/a" if result["eval_accuracy"] is None else f"{result['eval_accuracy']:.4f}"
    test = "n/a (nothing pushed)" if result["test_accuracy"] is None else f"{result['test_accuracy']:.4f}"
    lines = [
        f"\n### {result['label']} — {result['date']}\n",
        f"- machine: {result['machine']}",
        f"- command: `{result['command']}`",
        f"- whole pipeline: {result['pipeline_seconds'] / 60:.1f} min ({result['runner']}); "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB",
        f"- per component (ML Metadata execution times): {components}",
        f"- eval split: TFMA BinaryAccuracy {ev} (on the model's logit, threshold 0.5); "
        f"blessed: {result['blessed']}; pushed: {result['pushed']}",
        f"- **test split: accuracy {test}** on {result['test_reviews']} reviews "
        f"(serving_default on tf.Examples with `text` only, sigmoid(logit) >= 0.5)",
    ]
    append_section(lines)


if __name__ == "__main__":
    sys.exit(main())
