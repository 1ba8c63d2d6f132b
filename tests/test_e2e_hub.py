"""End to end with the TF Hub family on object storage: word vectors, data, the module and the
serving folder in a real S3 bucket (SeaweedFS), artifacts and ML Metadata on this machine:
`hub build`, then the real pipeline with `--model hub`, then `predict` reading the pushed model
back from s3://. (A local run refuses an S3 pipeline root: pipeline/local_runner.py says why.)"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SMALL_SETTINGS
from corpus import NEGATIVE, NEUTRAL, POSITIVE, write_aclimdb

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).parent / "imdb-pipeline")


def write_vectors(path: Path) -> Path:
    """Tiny GloVe-format file: sentiment words along the first axis, neutral words elsewhere."""
    rng = np.random.default_rng(0)
    lines = []
    for words, sign in ((POSITIVE, 1.0), (NEGATIVE, -1.0), (NEUTRAL, 0.0)):
        for word in words:
            vector = rng.normal(0, 0.1, 8)
            vector[0] += sign
            lines.append(word + " " + " ".join(f"{v:.5f}" for v in vector))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hub_family_on_s3_trains_pushes_and_serves_raw_text(tmp_path, s3_env):
    bucket = s3_env.create_bucket("hub-e2e")
    s3_env.client().upload_file(str(write_vectors(tmp_path / "vectors.txt")), bucket, "vectors/vectors.txt")
    s3_env.upload_tree(str(write_aclimdb(tmp_path / "data", n_train=240, n_test=0)), bucket, "data/aclImdb")
    module = f"s3://{bucket}/modules/words"
    built = subprocess.run([CLI, "hub", "build", "--vectors", f"s3://{bucket}/vectors/vectors.txt", "--out", module,
                            "--oov-buckets", "5"], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr  # the exit code is the command's, not the AWS SDK's abort
    assert f"--hub-handle {module}" in built.stdout
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL_SETTINGS))
    workdir = tmp_path / "wd"
    serving = f"minio://{bucket}/serving"  # a stock KFP install's scheme: the same objects as s3://
    run = subprocess.run([CLI, "run", "--data", f"s3://{bucket}/data/aclImdb", "--workdir", str(workdir),
                          "--serving-dir", serving,
                          "--config", str(config), "--model", "hub", "--hub-handle", module],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((workdir / "run_summary.json").read_text())
    assert summary["model_family"] == "hub" and summary["blessed"] and summary["pushed"]
    assert (workdir / "metadata.sqlite").is_file()
    keys = s3_env.keys(bucket)
    versions = {key.split("/")[1] for key in keys if key.startswith("serving/")}
    assert len(versions) == 1
    version = versions.pop()
    assert {f"serving/{version}/saved_model.pb", f"serving/{version}/assets.extra/push_complete.json"} <= set(keys)
    predict = subprocess.run([CLI, "predict", "--serving-dir", serving, "--json",
                              "An amazing, wonderful film", "A dull and stupid waste"],
                             capture_output=True, text=True, timeout=300)
    assert predict.returncode == 0, predict.stderr
    positive, negative = [json.loads(line) for line in predict.stdout.splitlines()]
    assert positive["probability"] > 0.5 > negative["probability"]
