"""The wide tower: NBSVM (Wang & Manning 2012) as two lookups over hashed word uni- and bigrams.

A review's distinct uni- and bigrams are hashed into `buckets` features (binarised: a phrase
counts once however often it occurs). Each feature has a fixed Naive-Bayes log-count ratio
r = log((p / |p|) / (q / |q|)), counted once over the training split, and a trainable weight w;
the tower's logit is sum(r * w) + b: a logistic regression on NB-scaled binary features (Wang &
Manning's NB features with a linear model on top; their interpolation with the NB weights is left
out). It reads the cleaned review, which keeps far more than the tokens the GRU sees (all of any
real review: models/text.py).
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

DEFAULT_BUCKETS = 1 << 20
NB_SMOOTHING = 1.0  # Laplace smoothing of the per-class phrase counts (Wang & Manning's alpha)


def hashed_ngrams(texts: tf.Tensor, buckets: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """[batch] cleaned texts -> (row, feature) int64 pairs, each distinct pair once."""
    tokens = tf.strings.split(texts)
    grams = tf.concat([tokens, tf.strings.ngrams(tokens, 2, separator=" ")], axis=1)
    ids = tf.ragged.map_flat_values(tf.strings.to_hash_bucket_fast, grams, buckets)
    keys, _ = tf.unique(ids.value_rowids() * buckets + ids.flat_values)
    return keys // buckets, keys % buckets


def nb_log_ratios(batches: Iterable[Tuple[np.ndarray, np.ndarray]], buckets: int,
                  smoothing: float = NB_SMOOTHING) -> np.ndarray:
    """r per feature from (cleaned texts, 0/1 labels) batches: one pass, counts in numpy."""
    positive = np.full(buckets, smoothing, dtype=np.float64)
    negative = np.full(buckets, smoothing, dtype=np.float64)
    for texts, labels in batches:
        rows, ids = (t.numpy() for t in hashed_ngrams(tf.constant(texts), buckets))
        is_positive = np.asarray(labels).reshape(-1)[rows] > 0.5
        positive += np.bincount(ids[is_positive], minlength=buckets)
        negative += np.bincount(ids[~is_positive], minlength=buckets)
    return np.log((positive / positive.sum()) / (negative / negative.sum())).astype(np.float32)


@keras.utils.register_keras_serializable(package="imdb")
class NbLinearTower(keras.layers.Layer):
    """[batch] cleaned texts -> [batch, 1] logit = sum over distinct phrases of r * w, plus b."""

    def __init__(self, buckets: int = DEFAULT_BUCKETS, log_ratios: Optional[np.ndarray] = None, **kwargs):
        super().__init__(**kwargs)
        if log_ratios is not None and log_ratios.shape != (buckets,):
            raise ValueError(f"log ratios have shape {log_ratios.shape}, expected ({buckets},)")
        self.buckets, self._initial_ratios = buckets, log_ratios

    def build(self, input_shape):
        ratios = self._initial_ratios
        self.log_ratio = self.add_weight(
            name="nb_log_ratio", shape=(self.buckets,), trainable=False,
            initializer=keras.initializers.Constant(ratios) if ratios is not None else "zeros")
        self.weight = self.add_weight(name="weight", shape=(self.buckets,), initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")
        self._initial_ratios = None  # 4 MB of numpy not kept alive twice
        super().build(input_shape)

    def call(self, texts):  # pylint: disable=arguments-differ
        rows, ids = hashed_ngrams(tf.reshape(texts, [-1]), self.buckets)
        contributions = tf.gather(self.log_ratio, ids) * tf.gather(self.weight, ids)
        logit = tf.math.unsorted_segment_sum(contributions, rows, tf.size(texts)) + self.bias
        return tf.reshape(logit, [-1, 1])

    def get_config(self):
        return {**super().get_config(), "buckets": self.buckets}
