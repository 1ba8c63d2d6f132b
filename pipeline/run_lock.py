"""One run per workdir: an OS lock that dies with its process.

Two runs on one workdir would share the SQLite metadata store, each other's temporary folders
and the serving folder. `fcntl.flock` on `<workdir>/.run.lock` is released by the kernel when the
holder exits, however it exits (SIGKILL included), so a crashed run never leaves a stale lock;
the file's text only names the holder for the refusal message.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from typing import IO, Iterator

from models.errors import UserError

LOCK_FILE = ".run.lock"


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
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, LOCK_FILE)
    with open(path, "a+", encoding="utf-8") as handle:  # a+: never truncates the holder's note
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise UserError(f"Another run is using the workdir {workdir}: {_holder(handle)}. Wait for it to "
                            "finish, pass --wait to queue behind it, or use another --workdir.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
