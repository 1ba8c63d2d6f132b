"""Initial embedding rows from pretrained word vectors (GloVe), for the masked GRU.

Row layout matches Transform's ids: 0 = padding (zeros), 1..V = vocabulary words in order,
V+1.. = OOV buckets. Words missing from the vectors and the OOV rows start as small random
vectors with the pretrained vectors' spread, so they are on the same scale.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from models.hub_module import read_word_vectors


def pretrained_embedding_matrix(vocabulary: Sequence[str], num_oov_buckets: int, vectors_path: str,
                                seed: int = 0) -> "tuple[np.ndarray, int]":
    """Returns (matrix [1 + V + OOV, dim], number of vocabulary words found in the vectors)."""
    words, vectors = read_word_vectors(vectors_path)
    index = {word: row for row, word in enumerate(words)}
    rng = np.random.default_rng(seed)
    scale = float(vectors.std())
    matrix = rng.normal(0.0, scale, size=(1 + len(vocabulary) + num_oov_buckets, vectors.shape[1])).astype(np.float32)
    matrix[0] = 0.0
    found = 0
    for position, word in enumerate(vocabulary, start=1):
        row = index.get(word)
        if row is not None:
            matrix[position] = vectors[row]
            found += 1
    return matrix, found
