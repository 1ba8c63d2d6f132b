"""The task image (make image) and a Docker network for the container-mode harness.

The network is `--internal`: its containers reach the machine's side of the bridge (where the
suite's S3 server listens) and nothing beyond it. Without Docker or the image the container tests
fail under CI (.ci/run builds the image first) and are skipped elsewhere, saying how to build it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from typing import Iterator, Tuple

import pytest

IMAGE = os.environ.get("IMDB_TASK_IMAGE", "imdb-sentiment:dev")


def require_image() -> str:
    problem = None
    if not shutil.which("docker"):
        problem = "no docker client"
    elif subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        problem = "no Docker daemon answers"
    elif subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode != 0:
        problem = f"the image {IMAGE} is not built"
    if problem:
        message = f"{problem}: run `make image` (scripts/build_image.sh) first"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return IMAGE


@contextlib.contextmanager
def internal_network() -> Iterator[Tuple[str, str]]:
    """(name, gateway address) of a fresh internal Docker network, removed afterwards."""
    name = f"imdb-harness-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "network", "create", "--internal", name], check=True, capture_output=True)
    try:
        gateway = subprocess.run(["docker", "network", "inspect", name, "--format",
                                  "{{range .IPAM.Config}}{{.Gateway}}{{end}}"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        yield name, gateway
    finally:
        subprocess.run(["docker", "network", "rm", name], check=False, capture_output=True)


def docker_run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "run", "--rm", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
