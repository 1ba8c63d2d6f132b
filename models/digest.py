"""Content digests of files and folders at any URI tf.io.gfile reads: what pins an input's bytes
(word vectors, Hub modules) in a cache key, and what `--hub-sha256` is checked against."""
from __future__ import annotations

import hashlib
import os
from typing import Callable, Optional

import tensorflow as tf

_CHUNK = 1 << 20


def _update_with_file(digest, path: str) -> None:
    with tf.io.gfile.GFile(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)


def content_digest(path: str, skip: Optional[Callable[[str], bool]] = None) -> str:
    """SHA-256 of a file's bytes; for a folder, of every file's relative path and bytes, in path
    order, leaving out the relative paths `skip` names (e.g. a push's own marker files)."""
    digest = hashlib.sha256()
    if not tf.io.gfile.isdir(path):
        _update_with_file(digest, path)
        return digest.hexdigest()
    relative = sorted(os.path.relpath(os.path.join(root, name), path)
                      for root, _, files in tf.io.gfile.walk(path) for name in files)
    for name in relative:
        if skip is None or not skip(name):
            digest.update(name.encode("utf-8") + b"\0")
            _update_with_file(digest, os.path.join(path, name))
    return digest.hexdigest()
