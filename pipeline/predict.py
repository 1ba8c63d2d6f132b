"""Scores raw review strings with the newest model the Pusher put in the serving folder that loads.

`Predictor.newest(serving_dir)` walks the complete versions newest first (components/serving_dir.py)
and skips, with a warning, each one that does not load; `read_reviews(stream)` turns stdin into
reviews without failing on invalid UTF-8.
"""
from __future__ import annotations

import logging
import os
from typing import BinaryIO, Iterable, Iterator, List, TextIO, Tuple, Union

from models.features import PREDICTED_LABEL, PROBABILITY, SERVING_SIGNATURE
from models.errors import UserError

log = logging.getLogger("imdb.predict")

SHOWN_BAD_LINES = 5  # line numbers named in the invalid-UTF-8 warning


def newest_model_dir(serving_dir: str) -> str:
    """`<serving_dir>/<highest complete version>` (marker checked, nothing loaded)."""
    from components.serving_dir import newest_complete_version  # pylint: disable=import-outside-toplevel

    _require_folder(serving_dir)
    version = newest_complete_version(serving_dir)
    if version is None:
        raise UserError(_nothing_pushed(serving_dir))
    return os.path.join(serving_dir, version)


def _require_folder(serving_dir: str) -> None:
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    if not fileio.exists(serving_dir):
        raise UserError(f"No serving folder at {serving_dir}: run the pipeline first (or pass --serving-dir).")


def _nothing_pushed(serving_dir: str) -> str:
    return f"No pushed model in {serving_dir}: no blessed model has been pushed yet."


class Predictor:
    """Holds one loaded SavedModel; `predict` takes raw review strings in batches."""

    def __init__(self, model_dir: str):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        self._tf = tf
        self.model_dir = model_dir
        from models.storage import loadable_path  # pylint: disable=import-outside-toplevel

        loaded = tf.saved_model.load(loadable_path(model_dir))
        if SERVING_SIGNATURE not in loaded.signatures:
            raise UserError(f"The model in {model_dir} has no {SERVING_SIGNATURE} signature taking review text.")
        self._loaded = loaded  # keeps the variables alive
        self._serve = loaded.signatures[SERVING_SIGNATURE]

    @classmethod
    def newest(cls, serving_dir: str) -> "Predictor":
        """The newest complete version that loads (and has the review signature); each newer one that
        does not is skipped with a WARNING naming it and the error's first line."""
        from components.serving_dir import complete_versions, newest_loadable_version  # pylint: disable=import-outside-toplevel

        _require_folder(serving_dir)
        versions = complete_versions(serving_dir, warn_incomplete=True)
        if not versions:
            raise UserError(_nothing_pushed(serving_dir))
        chosen = newest_loadable_version(serving_dir, load=cls, versions=versions)
        if chosen is None:
            raise UserError(f"None of the {len(versions)} pushed versions in {serving_dir} "
                            f"({', '.join(versions)}) loads (see the warnings above); run the pipeline to push "
                            "a working model.")
        version, predictor = chosen
        if version != versions[0]:
            log.warning("scoring with version %s, the newest one that loads", version)
        return predictor

    def predict(self, texts: List[str]) -> List[Tuple[float, int]]:
        if not texts:
            return []
        outputs = self._serve(text=self._tf.constant(texts, dtype=self._tf.string))
        probabilities = outputs[PROBABILITY].numpy().tolist()
        labels = outputs[PREDICTED_LABEL].numpy().tolist()
        return [(float(p), int(label)) for p, label in zip(probabilities, labels)]

    def predict_stream(self, texts: Iterable[str], batch_size: int = 256) -> Iterator[Tuple[str, float, int]]:
        batch: List[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) == batch_size:
                yield from ((t, p, label) for t, (p, label) in zip(batch, self.predict(batch)))
                batch = []
        yield from ((t, p, label) for t, (p, label) in zip(batch, self.predict(batch)))


def read_reviews(stream: Union[BinaryIO, TextIO, Iterable[bytes], Iterable[str]]) -> Iterator[str]:
    """One review per non-blank line of `stream` (line ends removed).

    A text stream with a `.buffer` (sys.stdin) is read as bytes, and a line that is not valid UTF-8
    is decoded with its bad bytes replaced (U+FFFD) instead of failing; one WARNING at the end names
    how many lines were affected and the first few line numbers (1-based, blank lines counted).
    """
    lines = getattr(stream, "buffer", stream)
    bad: List[int] = []
    try:
        for number, line in enumerate(lines, start=1):
            if isinstance(line, bytes):
                try:
                    line = line.decode("utf-8")
                except UnicodeDecodeError:
                    line = line.decode("utf-8", errors="replace")
                    bad.append(number)
            line = line.rstrip("\r\n")
            if line.strip():
                yield line
    finally:
        if bad:
            shown = ", ".join(str(n) for n in bad[:SHOWN_BAD_LINES]) + (", ..." if len(bad) > SHOWN_BAD_LINES else "")
            log.warning("%d input line%s not valid UTF-8 (line%s %s); the bad bytes were replaced by U+FFFD",
                        len(bad), "s were" if len(bad) > 1 else " was", "s" if len(bad) > 1 else "", shown)
