"""The masked GRU: Embedding -> GRU(return_sequences) -> GRU -> Dense(sigmoid).

The mask is computed explicitly as `token id != 0` and handed to both GRU layers, so padding
never influences the state: a review scores the same however much padding follows it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf
import tf_keras as keras

from models import features
from models.compiling import LearningRate, compile_binary_classifier


@keras.utils.register_keras_serializable(package="imdb")
class PaddingMask(keras.layers.Layer):
    """Boolean mask of real tokens (id != padding id)."""

    def call(self, token_ids):  # pylint: disable=arguments-differ
        return tf.not_equal(token_ids, features.PADDING_ID)


def build_gru_model(vocab_rows: int, embedding_dim: int = 128, units: int = 128, learning_rate: LearningRate = 1e-3,
                    embedding_matrix: Optional[np.ndarray] = None) -> keras.Model:
    """vocab_rows = 1 (padding) + vocabulary size + OOV buckets.

    `embedding_matrix` ([vocab_rows, dim], e.g. GloVe rows for the vocabulary) initialises the
    embedding, which stays trainable; its width overrides `embedding_dim`.
    """
    if embedding_matrix is not None:
        if embedding_matrix.shape[0] != vocab_rows:
            raise ValueError(f"embedding matrix has {embedding_matrix.shape[0]} rows, expected {vocab_rows}")
        embedding_dim = int(embedding_matrix.shape[1])
        initializer = keras.initializers.Constant(embedding_matrix)
    else:
        initializer = "uniform"
    token_ids = keras.Input(shape=(None,), dtype=tf.int64, name=features.TOKEN_IDS)
    mask = PaddingMask(name="padding_mask")(token_ids)
    embedded = keras.layers.Embedding(vocab_rows, embedding_dim, embeddings_initializer=initializer,
                                      name="embedding")(token_ids)
    sequence = keras.layers.GRU(units, return_sequences=True, name="gru_sequence")(embedded, mask=mask)
    state = keras.layers.GRU(units, name="gru_final")(sequence, mask=mask)
    probability = keras.layers.Dense(1, activation="sigmoid", name=features.PROBABILITY)(state)
    return compile_binary_classifier(keras.Model(token_ids, probability, name="masked_gru"), learning_rate)
