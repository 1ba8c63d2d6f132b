"""Benchmark: in-process latency and throughput of an exported model's raw-text signature.

Not a test. Loads a SavedModel (a version folder, or the newest version of a serving folder),
calls `serving_default` the way a server would: one review at a time (p50/p90/p99 latency over
`--singles` reviews) and in batches of 32 and 256 (reviews per second), on real review texts
(the test CSV: only its texts are read, as request bodies; no label is looked at). Medians of
`--repeats` passes; appends a table row to BENCHMARKS.md unless --no-record.

`--xla TRANSFORM_GRAPH` first exports the same trained model again the way the Trainer does with
`serving_xla` (models/export.py, into a temporary folder) and measures that export, after
replaying its warmup requests as TF Serving would while loading it.

    .venv/bin/python bench/serving.py --model workdir/serving --label "pooled BiGRU + wide"
    .venv/bin/python bench/serving.py --model workdir/serving --xla workdir/pipeline_root/Transform/transform_graph/6
"""
from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recording import append_section, machine  # noqa: E402

DEFAULT_TEXTS = ROOT.parent / "shared" / "data" / "imdb" / "test.csv.gz"
BATCH_SIZES = (1, 32, 256)


def read_texts(path: Path, count: int) -> List[str]:
    csv.field_size_limit(1 << 24)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = csv.DictReader(io.StringIO(handle.read()))
        texts = [row["text"] for row in rows]
    step = max(1, len(texts) // count)
    return texts[::step][:count]  # spread over the file: both labels, every length


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def measure(serve, texts: List[str], singles: int) -> Dict[str, float]:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    for text in texts[:20]:
        serve(text=tf.constant([text]))  # warm-up: first calls trace and allocate
    serve(text=tf.constant(texts[:256]))
    latencies = []
    for text in texts[:singles]:
        started = time.perf_counter()
        serve(text=tf.constant([text]))
        latencies.append((time.perf_counter() - started) * 1000)
    result = {"p50_ms": percentile(latencies, 0.5), "p90_ms": percentile(latencies, 0.9),
              "p99_ms": percentile(latencies, 0.99)}
    for size in BATCH_SIZES:
        batches = [texts[start:start + size] for start in range(0, len(texts) - size + 1, size)][:max(1, 1024 // size)]
        started = time.perf_counter()
        for batch in batches:
            serve(text=tf.constant(batch))
        result[f"per_second_batch_{size}"] = sum(map(len, batches)) / (time.perf_counter() - started)
    return result


def export_with_xla(model_dir: str, transform_graph: str, export_dir: str) -> str:
    """The trained model of `model_dir`, exported again with the XLA-compiled raw-text signature."""
    import tensorflow_transform as tft  # pylint: disable=import-outside-toplevel
    import tf_keras as keras  # pylint: disable=import-outside-toplevel

    # pylint: disable=import-outside-toplevel,unused-import
    import models.stacking  # noqa: F401  (registers its layers for loading, as models.wide does)
    import models.wide  # noqa: F401
    from models.export import export_serving_model

    model = keras.models.load_model(model_dir, compile=False)
    export_serving_model(model, tft.TFTransformOutput(transform_graph), export_dir, xla=True)
    return export_dir


def replay_warmup(loaded, model_dir: str) -> int:
    """What TF Serving does with a model's warmup file while loading it; the number of requests."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=import-outside-toplevel

    from models.features import WARMUP_FILE  # pylint: disable=import-outside-toplevel

    path = os.path.join(model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(path):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        loaded.signatures[request.model_spec.signature_name](
            **{name: tf.constant(tf.make_ndarray(value)) for name, value in request.inputs.items()})
        count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="SavedModel folder, or a serving folder (newest version)")
    parser.add_argument("--texts", default=str(DEFAULT_TEXTS), help="CSV (gzip) with a text column")
    parser.add_argument("--singles", type=int, default=500, help="reviews sent one at a time per pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--xla", metavar="TRANSFORM_GRAPH",
                        help="measure the model exported again with serving_xla (needs its Transform graph folder)")
    args = parser.parse_args()

    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from pipeline.predict import newest_model_dir  # pylint: disable=import-outside-toplevel

    model_dir = args.model if tf.io.gfile.exists(os.path.join(args.model, "saved_model.pb")) \
        else newest_model_dir(args.model)
    trained_dir = model_dir
    if args.xla:
        model_dir = export_with_xla(trained_dir, args.xla, tempfile.mkdtemp(prefix="serving-xla-"))
    loaded = tf.saved_model.load(model_dir)
    started = time.perf_counter()
    warmup_requests = replay_warmup(loaded, model_dir)
    warmup_seconds = time.perf_counter() - started
    serve = loaded.signatures["serving_default"]
    texts = read_texts(Path(args.texts), max(args.singles, 1024))
    passes = [measure(serve, texts, args.singles) for _ in range(args.repeats)]
    result = {"label": args.label or trained_dir + (" (XLA)" if args.xla else ""), "model_dir": trained_dir,
              "xla": bool(args.xla), "warmup_requests": warmup_requests, "warmup_seconds": round(warmup_seconds, 1),
              "date": datetime.date.today().isoformat(),
              "machine": machine(),
              "command": " ".join([Path(sys.executable).name] + sys.argv), "repeats": args.repeats,
              **{key: {"median": statistics.median(p[key] for p in passes), "min": min(p[key] for p in passes),
                       "max": max(p[key] for p in passes)} for key in passes[0]}}
    print(json.dumps(result, indent=1))
    if not args.no_record:
        record(result)
    return 0


def record(result: dict) -> None:
    def cell(key: str, digits: int) -> str:
        figure = result[key]
        return f"{figure['median']:.{digits}f} ({figure['min']:.{digits}f}–{figure['max']:.{digits}f})"

    row = " | ".join([result["label"], cell("p50_ms", 1), cell("p90_ms", 1), cell("p99_ms", 1),
                      *(cell(f"per_second_batch_{size}", 0) for size in BATCH_SIZES)])
    append_section([f"\n| {row} |  <!-- serving: {result['date']}, {result['machine']}, `{result['command']}` -->"])


if __name__ == "__main__":
    sys.exit(main())
