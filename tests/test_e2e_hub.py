"""End to end with the TF Hub family: a module built offline from word vectors, then the real
pipeline with `--model hub`, then the pushed model answering raw text."""
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


def test_hub_family_trains_pushes_and_serves_raw_text(tmp_path):
    vectors = write_vectors(tmp_path / "vectors.txt")
    module = tmp_path / "module"
    built = subprocess.run([CLI, "hub", "build", "--vectors", str(vectors), "--out", str(module),
                            "--oov-buckets", "5"], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    data = write_aclimdb(tmp_path / "data", n_train=240, n_test=0)
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL_SETTINGS))
    workdir = tmp_path / "wd"
    run = subprocess.run([CLI, "run", "--data", str(data), "--workdir", str(workdir), "--config", str(config),
                          "--model", "hub", "--hub-handle", str(module)],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((workdir / "run_summary.json").read_text())
    assert summary["model_family"] == "hub" and summary["blessed"] and summary["pushed"]
    predict = subprocess.run([CLI, "predict", "--workdir", str(workdir), "--json",
                              "An amazing, wonderful film", "A dull and stupid waste"],
                             capture_output=True, text=True, timeout=300)
    assert predict.returncode == 0, predict.stderr
    positive, negative = [json.loads(line) for line in predict.stdout.splitlines()]
    assert positive["probability"] > 0.5 > negative["probability"]
