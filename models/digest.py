"""Content digests of files and folders at any URI tf.io.gfile reads: what pins an input's bytes
(word vectors, Hub modules) in a cache key, and what `--hub-sha256` is checked against."""
from __future__ import annotations

import hashlib
import os

import tensorflow as tf

_CHUNK = 1 << 20


def _update_with_file(digest, path: str) -> None:
    with tf.io.gfile.GFile(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)


def content_digest(path: str) -> str:
    """SHA-256 of a file's bytes; for a folder, of every file's relative path and bytes, in order."""
    digest = hashlib.sha256()
    if not tf.io.gfile.isdir(path):
        _update_with_file(digest, path)
        return digest.hexdigest()
    for root, _, files in sorted(tf.io.gfile.walk(path)):
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode("utf-8") + b"\0")
            _update_with_file(digest, full)
    return digest.hexdigest()
