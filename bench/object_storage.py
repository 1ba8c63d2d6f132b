"""Benchmark: the full-data pipeline from and to a real S3 bucket (SeaweedFS `weed mini`).

Two runs on the same bucket, each timed by component, each pushed model read back from s3:// and
scored on the 25,000 test reviews through the raw-text signature:
  local     `imdb-pipeline run` with --data, --serving-dir and the GloVe vectors on s3://
            (artifacts and ML Metadata on this machine: a local run refuses an S3 pipeline root)
  harness   the spec compiled for --target kfp with --s3-endpoint, executed task by task by
            testing/kfp_harness/: pipeline root minio://, artifacts moved by the re-enacted
            KFP launcher, the tasks' S3 access only from the compiled env and mapped secret;
            with --image every task runs in that image (docker run, as a pod), on an internal
            Docker network whose gateway is where SeaweedFS listens, at --release's behaviour
Not a test. Needs ../shared/data (or --data, --vectors). Appends a section to BENCHMARKS.md.

    .venv/bin/python bench/object_storage.py
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the S3 server the test suite starts

from bench.full_pipeline import DEFAULT_DATA, score_test_split  # noqa: E402
from bench.recording import peak_rss_mib  # noqa: E402
from models import storage  # noqa: E402
from pipeline.cli import resolve_data  # noqa: E402
from pipeline.configs import SCHEMA_DIR, PipelineConfig  # noqa: E402
from s3_server import running_s3_server  # noqa: E402

DEFAULT_VECTORS = ROOT.parent / "shared" / "data" / "glove" / "glove.6B.50d.top100k.txt.gz"
BUCKET = "imdb"


def upload_dataset(server, folder: str, prefix: str, threads: int = 16) -> int:
    """train/ and test/ of an aclImdb folder (unsup/ is never read) into the bucket, in parallel."""
    files = [os.path.join(root, name) for split in ("train", "test")
             for root, _, names in os.walk(os.path.join(folder, split)) if "unsup" not in root for name in names]
    client = server.client()

    def put(path: str) -> None:
        client.upload_file(path, BUCKET, f"{prefix}/{os.path.relpath(path, folder)}")

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, files))
    return len(files)


def score(serving_dir: str, data_root: str, max_review_bytes: int) -> dict:
    from pipeline.predict import Predictor  # pylint: disable=import-outside-toplevel

    started = time.time()
    predictor = Predictor.newest(serving_dir)
    loaded = time.time() - started
    return {"model_dir": predictor.model_dir, "load_seconds": round(loaded, 1),
            **score_test_split(predictor.predict, data_root, max_review_bytes)}


def local_run(config: PipelineConfig) -> dict:
    from pipeline.local_runner import run_local  # pylint: disable=import-outside-toplevel

    started = time.time()
    summary = run_local(config)
    return {"seconds": round(time.time() - started, 1), "status": summary["status"],
            "blessed": summary.get("blessed"), "pushed": summary.get("pushed"),
            "eval": (summary.get("eval_metrics") or {}).get("overall"),
            "component_seconds": {k: v.get("seconds") for k, v in summary["components"].items()}}


def harness_run(config: PipelineConfig, server, workdir: str, image=None, network=None, release="2.17") -> dict:
    from kubeflow import spec_check  # pylint: disable=import-outside-toplevel
    from testing.kfp_harness.harness import LocalKfpRun  # pylint: disable=import-outside-toplevel
    from kubeflow.settings import KubeflowSettings  # pylint: disable=import-outside-toplevel
    from pipeline.kubeflow_commands import compile_config  # pylint: disable=import-outside-toplevel

    from kubeflow.settings import IMAGE_SCHEMA_DIR  # pylint: disable=import-outside-toplevel

    settings = KubeflowSettings(target="kfp", image=image or "local-harness", output=os.path.join(workdir, "kfp.yaml"),
                                schema_dir=IMAGE_SCHEMA_DIR if image else SCHEMA_DIR, require_object_storage=False,
                                s3_endpoint=server.endpoint)
    spec, platform_spec = spec_check.load_documents(compile_config(config, settings))
    secrets = {"mlpipeline-minio-artifact": {"accesskey": server.access_key, "secretkey": server.secret_key}}
    run = LocalKfpRun(spec, f"minio://{BUCKET}/v2/artifacts", mode="oss", state_dir=os.path.join(workdir, "harness"),
                      platform=platform_spec, secrets=secrets, image=image, network=network, release=release)
    started = time.time()
    results = run.run(log=sys.stdout)
    return {"seconds": round(time.time() - started, 1),
            "task_seconds": {name: result.seconds for name, result in results.items()},
            "blessed": results["BlessingGate"].outputs["blessing"][0]["metadata"].get("blessed"),
            "pushed": results["Pusher"].outputs["pushed_model"][0]["metadata"].get("pushed")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--vectors", default=str(DEFAULT_VECTORS))
    parser.add_argument("--workdir", default=str(ROOT / "workdir-bench-s3"))
    parser.add_argument("--skip", choices=("local", "harness"), action="append", default=[])
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--image", help="run the harness's tasks in this image (make image), as pods")
    parser.add_argument("--release", default="2.17", help="the KFP release whose driver and launcher to re-enact")
    args = parser.parse_args()

    workdir = os.path.abspath(args.workdir)
    data_root = resolve_data(args.data, workdir)
    result = {"date": datetime.date.today().isoformat(),
              "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
              "command": " ".join([Path(sys.executable).name] + sys.argv)}
    with contextlib.ExitStack() as stack:
        network, host = None, "127.0.0.1"
        if args.image:
            from task_image import internal_network  # pylint: disable=import-outside-toplevel

            network, host = stack.enter_context(internal_network())
        server = stack.enter_context(running_s3_server(os.path.join(workdir, "seaweedfs"), host=host))
        os.environ.update(server.env())
        storage.enable_s3()
        server.create_bucket(BUCKET)
        started = time.time()
        count = upload_dataset(server, data_root, "data/aclImdb")
        server.client().upload_file(args.vectors, BUCKET, "vectors/" + os.path.basename(args.vectors))
        result["upload"] = {"files": count, "seconds": round(time.time() - started, 1)}
        print(f"uploaded {count} files in {result['upload']['seconds']}s", flush=True)
        base = PipelineConfig(data_root=f"s3://{BUCKET}/data/aclImdb", accuracy_threshold=0.5,
                              pretrained_embeddings=f"s3://{BUCKET}/vectors/{os.path.basename(args.vectors)}",
                              workdir=os.path.join(workdir, "local"))
        if "local" not in args.skip:
            config = base.replace(serving_dir=f"s3://{BUCKET}/local/serving")
            result["local"] = local_run(config)
            result["local"].update(score(config.serving_dir, data_root, config.max_review_bytes))
            print(json.dumps(result["local"], indent=2), flush=True)
        if "harness" not in args.skip:
            config = base.replace(serving_dir=f"minio://{BUCKET}/harness/serving", input_fingerprint="full-aclImdb",
                                  workdir=os.path.join(workdir, "harness-config"))
            result["harness"] = harness_run(config, server, workdir, args.image, network, args.release)
            result["harness"].update(image=args.image, release=args.release)
            result["harness"].update(score(config.serving_dir, data_root, config.max_review_bytes))
            print(json.dumps(result["harness"], indent=2), flush=True)
    result["peak_rss_mib"] = round(peak_rss_mib())
    Path(workdir, "bench_result.json").write_text(json.dumps(result, indent=2))
    if not args.no_record:
        append_markdown(result)
    return 0


def append_markdown(result: dict) -> None:
    lines = [f"\n### Object storage: full data from and to a SeaweedFS bucket — {result['date']}\n",
             f"- machine: {result['machine']}", f"- command: `{result['command']}`",
             f"- upload of the {result['upload']['files']:,} train/test files: {result['upload']['seconds']:.0f}s"]
    for kind, title in (("local", "local run (LocalDagRunner), data, vectors and serving folder on s3://"),
                        ("harness", "compiled kfp spec through the harness, minio:// root, launcher re-enacted"
                                    + (f", every task in the image {result['harness'].get('image')} at KFP "
                                       f"{result['harness'].get('release')}" if result.get("harness", {}).get("image")
                                       else ""))):
        if kind not in result:
            continue
        run = result[kind]
        per = run.get("component_seconds") or run.get("task_seconds") or {}
        ev = run.get("eval") or {}
        lines += [f"- **{title}**: {run['seconds'] / 60:.1f} min, blessed {run.get('blessed')}, pushed {run.get('pushed')}"
                  + (f", eval accuracy {ev['accuracy']:.4f}" if ev.get("accuracy") else ""),
                  "  - per component: " + ", ".join(f"{k} {v:.0f}s" for k, v in per.items() if v is not None),
                  f"  - `predict` from {run['model_dir']}: loaded in {run['load_seconds']:.1f}s, test accuracy "
                  f"**{run['test_accuracy']:.4f}** on {run['test_reviews']:,} reviews "
                  f"(deduplicated {run['dedup_test_accuracy']:.4f})"]
    lines.append(f"- peak RSS of the benchmark process and its children: {result['peak_rss_mib']:,} MiB")
    with (ROOT / "BENCHMARKS.md").open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    storage.exit_process(main())
