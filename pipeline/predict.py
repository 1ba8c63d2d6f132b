"""Scores raw review strings with the newest model the Pusher put in the serving folder that loads.

`Predictor.newest(serving_dir)` walks the complete versions newest first (components/serving_dir.py)
and skips, with a warning, each one that does not load; `read_lines(stream)` turns stdin into
lines without failing on invalid UTF-8.

`Predictor.predict_rows(lines)` gives one `Row` per input line, in order: a blank line gets a row
with no score and a note (so output lines up with input), and a review that leaves no token after
the project's clean-up (models/text.py: emoji, markup, punctuation only) is scored, but its score
is the empty review's: it gets a note and one WARNING naming its line. When the served model
carries the Transform vocabulary (`assets/vocabulary`, saved with the transform graph by
models/export.py), a review none of whose tokens is in it gets a note and a WARNING too: it is
scored only on out-of-vocabulary hash buckets.
"""
from __future__ import annotations

import logging
import os
from typing import BinaryIO, FrozenSet, Iterable, Iterator, List, NamedTuple, Optional, TextIO, Tuple, Union

from models.features import PREDICTED_LABEL, PROBABILITY, SERVING_SIGNATURE, VOCABULARY_NAME
from models.errors import UserError

log = logging.getLogger("imdb.predict")

SHOWN_BAD_LINES = 5  # line numbers named in the invalid-UTF-8 warning

BLANK_NOTE = "blank line: not scored"
NO_TOKEN_NOTE = "no word left after clean-up: scored as the empty review"
NO_KNOWN_WORD_NOTE = "no word in the model's vocabulary: scored on unknown words only"


class Row(NamedTuple):
    """One output row per input line: `probability`/`label` are None for a line not scored."""
    number: int              # 1-based line (or argument) number
    text: str
    probability: Optional[float]
    label: Optional[int]
    note: Optional[str] = None


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

        local_dir = loadable_path(model_dir)  # a local copy of an S3 model: made once
        loaded = tf.saved_model.load(local_dir)
        if SERVING_SIGNATURE not in loaded.signatures:
            raise UserError(f"The model in {model_dir} has no {SERVING_SIGNATURE} signature taking review text.")
        self._loaded = loaded  # keeps the variables alive
        self._serve = loaded.signatures[SERVING_SIGNATURE]
        self.vocabulary = _read_vocabulary(local_dir)

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

    def note_for(self, text: str) -> Optional[str]:
        """Why `text`'s score says little, or None: no token after the clean-up (models/text.py's
        Python twin of the served graph's), or none in the vocabulary when the model carries one."""
        from models.text import tokenize_py  # pylint: disable=import-outside-toplevel

        tokens = tokenize_py(text)
        if not tokens:
            return NO_TOKEN_NOTE
        if self.vocabulary is not None and not any(token in self.vocabulary for token in tokens):
            return NO_KNOWN_WORD_NOTE
        return None

    def predict_rows(self, lines: Iterable[str], batch_size: int = 256, what: str = "line") -> Iterator[Row]:
        """One `Row` per element of `lines`, in order (see the module doc); one WARNING per review
        whose score says little, naming its `what` ("line", "argument") and number."""
        pending: List[Row] = []
        to_score = 0

        def flush() -> Iterator[Row]:
            scores = iter(self.predict([row.text for row in pending if row.note != BLANK_NOTE]))
            for row in pending:
                if row.note == BLANK_NOTE:
                    yield row
                    continue
                probability, label = next(scores)
                if row.note:
                    log.warning("%s %d: %s (probability %.4f)", what, row.number, row.note, probability)
                yield row._replace(probability=probability, label=label)
            pending.clear()

        for number, text in enumerate(lines, start=1):
            if not text.strip():
                pending.append(Row(number, text, None, None, BLANK_NOTE))
                continue
            pending.append(Row(number, text, None, None, self.note_for(text)))
            to_score += 1
            if to_score == batch_size:
                yield from flush()
                to_score = 0
        yield from flush()


def _read_vocabulary(model_dir: str) -> Optional[FrozenSet[str]]:
    """The Transform vocabulary the model was trained with (`assets/vocabulary`), or None when the
    model carries none (a stand-in model) or it cannot be read."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    path = os.path.join(model_dir, "assets", VOCABULARY_NAME)
    try:
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path, "rb") as handle:
            words = frozenset(line.rstrip(b"\r\n").decode("utf-8", errors="replace") for line in handle)
    except (OSError, tf.errors.OpError) as error:
        log.debug("no vocabulary read from %s: %s", path, error)
        return None
    return words or None


def read_lines(stream: Union[BinaryIO, TextIO, Iterable[bytes], Iterable[str]]) -> Iterator[str]:
    """Every line of `stream`, blank ones included (line ends removed).

    A text stream with a `.buffer` (sys.stdin) is read as bytes, and a line that is not valid UTF-8
    is decoded with its bad bytes replaced (U+FFFD) instead of failing; one WARNING at the end names
    how many lines were affected and the first few line numbers (1-based).
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
            yield line.rstrip("\r\n")
    finally:
        if bad:
            shown = ", ".join(str(n) for n in bad[:SHOWN_BAD_LINES]) + (", ..." if len(bad) > SHOWN_BAD_LINES else "")
            log.warning("%d input line%s not valid UTF-8 (line%s %s); the bad bytes were replaced by U+FFFD",
                        len(bad), "s were" if len(bad) > 1 else " was", "s" if len(bad) > 1 else "", shown)


def read_reviews(stream: Union[BinaryIO, TextIO, Iterable[bytes], Iterable[str]]) -> Iterator[str]:
    """One review per non-blank line of `stream` (`read_lines` without the blank lines)."""
    return (line for line in read_lines(stream) if line.strip())
