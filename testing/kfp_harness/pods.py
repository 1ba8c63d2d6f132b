"""Where a task runs: this machine's Python (fast), or the task image as a pod runs it (the proof).

A pod has a folder on this machine standing for its disk. The harness's launcher re-enactment
downloads the inputs into it before the task and uploads the outputs from it afterwards. A path on
the pod's disk (`/minio/...`, `/tmp/...`) is `host_path(path)` on this machine and
`task_path(path)` for the task; `host_of_task_path` turns what the task was told back into the
first.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence

from kubeflow.entrypoint import LAUNCHER_ROOT_ENV
from testing.kfp_harness.releases import EMPTY_DIRS, LEGACY_OUTPUT_FILE, KfpRelease

TASK_UID = 1000          # kubeflow/Dockerfile's user; what the harness runs every task as
TASK_HOME = "/home/pipeline"
STAGED_DIRS = ("/minio", "/s3", "/gcs")  # where the launcher keeps artifacts (LocalPathForURI)


class VenvPod:
    """The task's command in this machine's Python; its disk is a folder (KFP_LAUNCHER_LOCAL_ROOT
    tells the shim where '/' of the launcher's paths is)."""

    def __init__(self, name: str, python: str):
        self.root = tempfile.mkdtemp(prefix=f"harness-pod-{name}-")
        self.python = python

    def task_path(self, path: str) -> str:
        return self.root + path

    def host_path(self, path: str) -> str:
        return self.root + path

    def host_of_task_path(self, path: str) -> str:
        return path

    def hand_over(self) -> None:
        """Nothing to do: the task runs as this machine's user."""

    def run(self, argv: List[str], env: Dict[str, str], log, cwd: str) -> int:
        argv = [self.python if index == 0 and part in ("python", "python3") else part
                for index, part in enumerate(argv)]
        env = {**env, LAUNCHER_ROOT_ENV: self.root}
        return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, check=False).returncode

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class ContainerPod:
    """The task in the image, as a KFP pod runs it: as uid 1000; from 2.3 with a read-only root
    filesystem, writable only the release's emptyDirs (/minio, /s3, /gcs, /.local, /.cache,
    /.config), /tmp and $HOME; before 2.3 in the container's own filesystem; the environment exactly as given (the compiled `env`, the
    mapped secret, the pod's own variables), CPU and memory limits from the compiled resources, and
    a network that reaches the test's S3 server and nothing outside this machine."""

    def __init__(self, name: str, image: str, release: KfpRelease, network: str,
                 cpu_limit: float = 0.0, memory_limit_gb: float = 0.0):
        self.root = tempfile.mkdtemp(prefix=f"harness-pod-{name}-")
        self.container = f"harness-{os.path.basename(self.root)}"
        self.image, self.release, self.network = image, release, network
        self.cpu_limit, self.memory_limit_gb = cpu_limit, memory_limit_gb
        # From 2.3 emptyDirs (and, stricter than KFP, a read-only root with /tmp and $HOME writable);
        # before, the container's own filesystem, into which the launcher's files are copied.
        self.mounts = list(EMPTY_DIRS) + ["/tmp", TASK_HOME] if release.empty_dirs else []
        for path in self.mounts or STAGED_DIRS:
            os.makedirs(self.host_path(path), exist_ok=True)
            os.chown(self.host_path(path), TASK_UID, TASK_UID)

    def task_path(self, path: str) -> str:
        return path

    def host_path(self, path: str) -> str:
        return self.root + path

    def host_of_task_path(self, path: str) -> str:
        return self.root + path

    def docker_argv(self, argv: Sequence[str], env: Dict[str, str]) -> List[str]:
        """`docker run` from 2.3; before, `docker create` (files are copied in and out around it)."""
        start = ["docker", "run", "--rm", "--read-only"] if self.release.empty_dirs else ["docker", "create"]
        # The uid alone (its group from the image's passwd): `docker cp -a` resolves the container's
        # user by name and knows no "1000:1000".
        command = start + ["--name", self.container, "--user", str(TASK_UID), "--network", self.network,
                           "--workdir", TASK_HOME, "--entrypoint", argv[0]]
        for path in self.mounts:
            command += ["--volume", f"{self.host_path(path)}:{path}"]
        if self.cpu_limit:
            command += ["--cpus", f"{self.cpu_limit:g}"]
        if self.memory_limit_gb:
            command += ["--memory", f"{int(self.memory_limit_gb * 10**9)}b"]
        for key, value in sorted(env.items()):
            command += ["--env", f"{key}={value}"]
        return command + [self.image] + list(argv[1:])

    def hand_over(self) -> None:
        """What the harness's launcher wrote (as root) becomes the task user's, as in a pod, where
        the launcher runs as that user and creates the artifact folders the task writes into."""
        for folder, _, files in os.walk(self.root):
            os.chown(folder, TASK_UID, TASK_UID)
            for name in files:
                os.chown(os.path.join(folder, name), TASK_UID, TASK_UID)

    def run(self, argv: List[str], env: Dict[str, str], log, cwd: Optional[str] = None) -> int:
        if self.release.empty_dirs:
            return subprocess.run(self.docker_argv(argv, env), stdout=log, stderr=subprocess.STDOUT,
                                  check=False).returncode
        return self._run_in_its_own_filesystem(argv, env, log)

    def _run_in_its_own_filesystem(self, argv: List[str], env: Dict[str, str], log) -> int:
        """KFP 2.2: no emptyDir, so the launcher (as uid 1000) writes into the container's own
        /minio, /s3, /gcs, which only an image that made them the task user's allows. The files
        the harness's launcher downloaded go in with their owner (docker cp -a), and what the
        task wrote (artifacts, /tmp/kfp_outputs) comes back out for the upload."""
        subprocess.run(self.docker_argv(argv, env), check=True, capture_output=True)
        try:
            for path in STAGED_DIRS:
                subprocess.run(["docker", "cp", "-a", f"{self.host_path(path)}/.", f"{self.container}:{path}"],
                               check=True, capture_output=True)
            code = subprocess.run(["docker", "start", "--attach", self.container], stdout=log,
                                  stderr=subprocess.STDOUT, check=False).returncode
            for path in STAGED_DIRS + (os.path.dirname(LEGACY_OUTPUT_FILE),):
                os.makedirs(self.host_path(path), exist_ok=True)
                subprocess.run(["docker", "cp", f"{self.container}:{path}/.", self.host_path(path)],
                               check=False, capture_output=True)  # a folder the task never made is no error
            return code
        finally:
            subprocess.run(["docker", "rm", "--force", self.container], check=False, capture_output=True)

    def remove(self) -> None:
        # Files the task wrote belong to uid 1000; this process (root) removes them.
        shutil.rmtree(self.root, ignore_errors=True)
