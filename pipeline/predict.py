"""Scores raw review strings with the newest model that the Pusher put in the serving folder."""
from __future__ import annotations

import os
from typing import Iterable, Iterator, List, Tuple

from models.features import PREDICTED_LABEL, PROBABILITY, SERVING_SIGNATURE
from models.errors import UserError



def newest_model_dir(serving_dir: str) -> str:
    """`<serving_dir>/<highest complete version>`, the one TF Serving would load."""
    from components.serving_dir import newest_complete_version  # pylint: disable=import-outside-toplevel
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    if not fileio.exists(serving_dir):
        raise UserError(f"No serving folder at {serving_dir}: run the pipeline first (or pass --serving-dir).")
    version = newest_complete_version(serving_dir)
    if version is None:
        raise UserError(f"No pushed model in {serving_dir}: no blessed model has been pushed yet.")
    return os.path.join(serving_dir, version)


class Predictor:
    """Holds one loaded SavedModel; `predict` takes raw review strings in batches."""

    def __init__(self, model_dir: str):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        self._tf = tf
        self.model_dir = model_dir
        loaded = tf.saved_model.load(model_dir)
        if SERVING_SIGNATURE not in loaded.signatures:
            raise UserError(f"The model in {model_dir} has no {SERVING_SIGNATURE} signature taking review text.")
        self._loaded = loaded  # keeps the variables alive
        self._serve = loaded.signatures[SERVING_SIGNATURE]

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
