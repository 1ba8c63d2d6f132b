"""One run per workdir: an OS lock that dies with its process.

Two runs on one workdir would share the SQLite metadata store, each other's temporary folders
and the serving folder. `fcntl.flock` on `<workdir>/.run.lock` is released by the kernel when the
holder exits, however it exits (SIGKILL included), so a crashed run never leaves a stale lock;
the file's text only names the holder for the refusal message.

`check_folder` and `check_file` say in one sentence when a local location is not what it must be
(a folder that exists or can be created and written; a readable file), before the lock or any
component touches it.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from typing import IO, Iterator, Optional

from models.errors import UserError

LOCK_FILE = ".run.lock"


def check_folder(path: str, what: str) -> None:
    """`path` (named by the flag `what`) is a folder this process can write, or can be created:
    a regular file there, or on the way there, is refused in one sentence."""
    if "://" in path:
        return  # object storage: models.storage.check_location probes it
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise UserError(f"{what} {path} is a file, not a folder; name a folder (it is created if missing) "
                            "or move the file away.")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{what} {path} is a folder this user cannot write to; choose another one or fix "
                            "its permissions.")
        return
    ancestor = _existing_ancestor(path)
    if ancestor is None:
        return
    if not os.path.isdir(ancestor):
        raise UserError(f"{what} {path} cannot be created: {ancestor} is a file, not a folder.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} cannot be created: this user cannot write to {ancestor}.")


def check_file(path: str, what: str) -> None:
    """`path` (named by the flag `what`) is an existing, readable regular file."""
    if "://" in path:
        return
    if not os.path.exists(path):
        raise UserError(f"{what} {path} does not exist.")
    if os.path.isdir(path):
        raise UserError(f"{what} {path} is a folder; it must name a file.")
    if not os.access(path, os.R_OK):
        raise UserError(f"{what} {path} cannot be read by this user; fix its permissions.")


def _existing_ancestor(path: str) -> Optional[str]:
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
    return current


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        return "another process"
    return (f"process {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')} "
            f"({info.get('command', '?')})")


@contextlib.contextmanager
def workdir_lock(workdir: str, wait: bool = False) -> Iterator[None]:
    """Holds the workdir's lock for the block; refuses at once (or waits, with `wait`) if held."""
    check_folder(workdir, "--workdir")
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, LOCK_FILE)
    with open(path, "a+", encoding="utf-8") as handle:  # a+: never truncates the holder's note
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise UserError(f"Another run is using the workdir {workdir}: {_holder(handle)}. Wait for it to "
                                "finish, pass --wait to queue behind it, or use another --workdir.") from None
            print(f"waiting for the run using the workdir {workdir} to finish: {_holder(handle)}",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
