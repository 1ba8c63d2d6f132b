"""The GRU family: Embedding -> GRU layers over the tokens (mask `id != 0`) -> one logit.

Two named architectures over the same token ids:
- `seed`: the project's original model, GRU(return_sequences) -> GRU -> the last state.
- `pooled_bigru`: spatial dropout on the embedding, one bidirectional GRU, and the masked
  max and mean of all its states (Kim-style pooling: a strong phrase anywhere in a long
  review counts, not only what survives to the last step).

The mask is computed explicitly and handed to every GRU and the pooling, so padding never
influences the score: a review scores the same however much padding follows it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from models import features
from models.compiling import LearningRate, binary_classifier
from models.settings import GRU_ARCHITECTURES as ARCHITECTURES
SPATIAL_DROPOUT = 0.2
LOGIT_LAYER = "gru_logit"  # the tower's last layer: models/export.py compiles everything up to it with XLA


@keras.utils.register_keras_serializable(package="imdb")
class PaddingMask(keras.layers.Layer):
    """Boolean mask of real tokens (id != padding id)."""

    def call(self, token_ids):  # pylint: disable=arguments-differ
        return tf.not_equal(token_ids, features.PADDING_ID)


@keras.utils.register_keras_serializable(package="imdb")
class MaskedMaxMeanPooling(keras.layers.Layer):
    """[batch, steps, units] states + [batch, steps] mask -> [batch, 2 * units]: max and mean over
    the real steps only (keras' GlobalMaxPooling1D ignores the mask, so padding would win the max)."""

    def call(self, states, mask):  # pylint: disable=arguments-differ
        real = tf.cast(mask, states.dtype)[:, :, tf.newaxis]
        count = tf.reduce_sum(real, axis=1)
        mean = tf.reduce_sum(states * real, axis=1) / tf.maximum(count, 1.0)
        lowest = tf.fill(tf.shape(states), states.dtype.min)
        maximum = tf.reduce_max(tf.where(real > 0, states, lowest), axis=1)
        maximum = tf.where(count > 0, maximum, tf.zeros_like(maximum))  # an empty review: 0, not -inf
        return tf.concat([maximum, mean], axis=-1)

    def compute_mask(self, inputs, mask=None):  # pylint: disable=arguments-differ
        return None


def gru_logit(token_ids: keras.KerasTensor, vocab_rows: int, architecture: str, embedding_dim: int, units: int,
              embedding_matrix: Optional[np.ndarray]) -> keras.KerasTensor:
    """The GRU tower on `token_ids` ([batch, steps] int64): a [batch, 1] logit.

    vocab_rows = 1 (padding) + vocabulary size + OOV buckets. `embedding_matrix` ([vocab_rows, dim],
    e.g. GloVe rows for the vocabulary) initialises the embedding, which stays trainable; its
    width overrides `embedding_dim`.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"GRU architecture must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}")
    if embedding_matrix is not None:
        if embedding_matrix.shape[0] != vocab_rows:
            raise ValueError(f"embedding matrix has {embedding_matrix.shape[0]} rows, expected {vocab_rows}")
        embedding_dim = int(embedding_matrix.shape[1])
    mask = PaddingMask(name="padding_mask")(token_ids)
    # The vectors are assigned, not given as a Constant initializer: an initializer is part of the
    # layer's config, which the SavedModel keeps as JSON (43 MB at 21,000 x 50). "zeros"
    # draws no random numbers, so the layers after it initialise as they would with Constant.
    embedding = keras.layers.Embedding(vocab_rows, embedding_dim, name="embedding",
                                       embeddings_initializer="uniform" if embedding_matrix is None else "zeros")
    embedded = embedding(token_ids)
    if embedding_matrix is not None:
        embedding.set_weights([embedding_matrix])
    if architecture == "seed":
        sequence = keras.layers.GRU(units, return_sequences=True, name="gru_sequence")(embedded, mask=mask)
        summary = keras.layers.GRU(units, name="gru_final")(sequence, mask=mask)
    else:
        embedded = keras.layers.SpatialDropout1D(SPATIAL_DROPOUT, name="spatial_dropout")(embedded)
        states = keras.layers.Bidirectional(keras.layers.GRU(units, return_sequences=True),
                                            name="bigru")(embedded, mask=mask)
        summary = MaskedMaxMeanPooling(name="masked_max_mean")(states, mask)
    return keras.layers.Dense(1, name=LOGIT_LAYER)(summary)


def build_gru_model(architecture: str, vocab_rows: int, embedding_dim: int, units: int,
                    learning_rate: LearningRate = 1e-3, embedding_matrix: Optional[np.ndarray] = None) -> keras.Model:
    """The GRU family as a compiled classifier (token ids -> probability)."""
    token_ids = keras.Input(shape=(None,), dtype=tf.int64, name=features.TOKEN_IDS)
    logit = gru_logit(token_ids, vocab_rows, architecture, embedding_dim, units, embedding_matrix)
    return binary_classifier({features.TOKEN_IDS: token_ids}, logit, f"{architecture}_gru", learning_rate)
