"""tf.data input pipelines over Transform's output for the two model families.

The GRU family trims every review to its real length and batches reviews of similar length
together (bucket_by_sequence_length): a batch of 60-token reviews then runs 60 GRU steps, not
the padded maximum, which roughly halves training time on IMDB's long-tailed lengths.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import tensorflow as tf

from models import features

LENGTH_BUCKET_BOUNDARIES = (32, 64, 96, 128, 160, 200, 250, 300, 350)
_PARSE_BATCH = 512
MAX_SHUFFLE_BUFFER = 50_000  # IMDB's whole train split fits (~150 MB of padded ids)


def list_files(patterns: Sequence[str]) -> List[str]:
    files = sorted({path for pattern in patterns for path in tf.io.gfile.glob(pattern)})
    if not files:
        raise ValueError(f"no transformed examples match {list(patterns)}")
    return files


def _records(patterns: Sequence[str], feature_spec: Dict[str, tf.io.FixedLenFeature]) -> tf.data.Dataset:
    dataset = tf.data.TFRecordDataset(list_files(patterns), compression_type="GZIP")
    dataset = dataset.batch(_PARSE_BATCH).map(lambda batch: tf.io.parse_example(batch, feature_spec),
                                               num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.unbatch()


def make_dataset(patterns: Sequence[str], feature_spec: Dict, family: str, batch_size: int,
                 shuffle: bool, seed: int = 0, repeat: bool = False,
                 shuffle_buffer: int = 10_000) -> tf.data.Dataset:
    """(model inputs, label) batches: token ids for "gru", cleaned text for "hub"."""
    spec = {key: feature_spec[key] for key in (features.TOKEN_IDS, features.NUM_TOKENS,
                                                features.CLEAN_TEXT, features.LABEL)}
    dataset = _records(patterns, spec)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    label = lambda row: tf.cast(row[features.LABEL], tf.float32)  # noqa: E731
    if family == "gru":
        dataset = dataset.map(lambda row: (row[features.TOKEN_IDS][:tf.maximum(row[features.NUM_TOKENS], 1)],
                                           label(row)))
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda ids, _: tf.shape(ids)[0],
            bucket_boundaries=list(LENGTH_BUCKET_BOUNDARIES),
            bucket_batch_sizes=[batch_size] * (len(LENGTH_BUCKET_BOUNDARIES) + 1),
            padded_shapes=([None], []),
            padding_values=(tf.constant(features.PADDING_ID, tf.int64), 0.0))
    else:
        dataset = dataset.map(lambda row: (row[features.CLEAN_TEXT], label(row))).batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)


def count_records(patterns: Sequence[str]) -> int:
    return int(tf.data.TFRecordDataset(list_files(patterns), compression_type="GZIP")
               .reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def model_inputs(transformed: Dict[str, tf.Tensor], family: str) -> tf.Tensor:
    """What the Keras model takes, from Transform's output (used by the exported signatures)."""
    if family == "gru":
        longest = tf.maximum(tf.reduce_max(transformed[features.NUM_TOKENS]), 1)
        return transformed[features.TOKEN_IDS][:, :longest]
    return transformed[features.CLEAN_TEXT]


