"""The task image's cost: size, how long `make image` takes, and what running a task in it adds.

    python bench/task_image.py [--image imdb-sentiment:dev] [--repeats 3] [--build]

Per-task overhead: the same compiled task (ImportSchemaGen of the kfp spec, KFP 2.17's
ExecutorInput) through the harness in this machine's Python and in the image, alternating, with
a SeaweedFS on an internal Docker network; plus a bare `docker run` of the image. `--build`
times `make image` with the docker cache of the project layer dropped (the dependency layer and
the wheelhouse stay: what a code change costs). Medians with (min-max).
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def spread(values):
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def timed(command):
    started = time.time()
    subprocess.run(command, check=True, capture_output=True)
    return time.time() - started


def task_seconds(tmp, image, network, s3, release="2.17"):
    from test_kubeflow_harness import compile_for_harness  # pylint: disable=import-outside-toplevel
    from testing.kfp_harness.harness import LocalKfpRun  # pylint: disable=import-outside-toplevel

    spec, _, platform = compile_for_harness(tmp, "kfp", data_root="s3://bench/data", serving_dir="s3://bench/serving",
                                            image=image or "local-harness", s3_endpoint=s3.endpoint)
    secrets = {"mlpipeline-minio-artifact": {"accesskey": s3.access_key, "secretkey": s3.secret_key}}
    run = LocalKfpRun(spec, "minio://bench/v2/artifacts", env={**os.environ, **s3.env()},
                      state_dir=str(tmp / "state"), platform=platform, secrets=secrets, release=release,
                      image=image, network=network if image else None)
    started = time.time()
    run.run(stop_after="ImportSchemaGen")
    return time.time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="imdb-sentiment:dev")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build", action="store_true")
    args = parser.parse_args()
    from s3_server import running_s3_server  # pylint: disable=import-outside-toplevel
    from task_image import internal_network  # pylint: disable=import-outside-toplevel

    result = {"image": args.image, "size_bytes": int(subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", args.image], check=True, capture_output=True,
        text=True).stdout)}
    if args.build:
        builds = []
        for _ in range(args.repeats):
            (ROOT / "pipeline" / "_bench_touch.py").write_text(f"# {time.time()}\n")
            try:
                builds.append(timed(["make", "-C", str(ROOT), "image"]))
            finally:
                (ROOT / "pipeline" / "_bench_touch.py").unlink()
        result["rebuild_after_code_change"] = spread(builds)
    result["docker_run_identity"] = spread([timed(["docker", "run", "--rm", "--network", "none", args.image])
                                            for _ in range(args.repeats)])
    venv, container = [], []
    with tempfile.TemporaryDirectory() as folder, internal_network() as (network, gateway):
        with running_s3_server(os.path.join(folder, "weed"), host=gateway) as s3:
            s3.create_bucket("bench")
            for index in range(args.repeats):
                venv.append(task_seconds(Path(folder) / f"v{index}", None, None, s3))
                container.append(task_seconds(Path(folder) / f"c{index}", args.image, network, s3))
    result["ImportSchemaGen_venv"] = spread(venv)
    result["ImportSchemaGen_image"] = spread(container)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
