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


def make_dataset(patterns: Sequence[str], feature_spec: Dict, input_names: Sequence[str], batch_size: int,
                 shuffle: bool, seed: int = 0, repeat: bool = False,
                 shuffle_buffer: int = 10_000) -> tf.data.Dataset:
    """({input name: batch}, label) batches holding the model's inputs: token ids (trimmed and
    bucketed by length) and/or the cleaned text."""
    spec = {key: feature_spec[key] for key in (features.TOKEN_IDS, features.NUM_TOKENS,
                                                features.CLEAN_TEXT, features.LABEL)}
    dataset = _records(patterns, spec)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(lambda row: (model_inputs(row, input_names, batched=False),
                                       tf.cast(row[features.LABEL], tf.float32)))
    if features.TOKEN_IDS not in input_names:
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    padding = {features.TOKEN_IDS: tf.constant(features.PADDING_ID, tf.int64), features.CLEAN_TEXT: ""}
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=lambda inputs, _: tf.shape(inputs[features.TOKEN_IDS])[0],
        bucket_boundaries=list(LENGTH_BUCKET_BOUNDARIES),
        bucket_batch_sizes=[batch_size] * (len(LENGTH_BUCKET_BOUNDARIES) + 1),
        padded_shapes=({name: [None] if name == features.TOKEN_IDS else [] for name in input_names}, []),
        padding_values=({name: padding[name] for name in input_names}, 0.0))
    return dataset.prefetch(tf.data.AUTOTUNE)


def labelled_texts(patterns: Sequence[str], batch_size: int = _PARSE_BATCH) -> tf.data.Dataset:
    """(cleaned texts, labels) batches in file order: the wide tower's one counting pass."""
    spec = {features.CLEAN_TEXT: tf.io.FixedLenFeature([], tf.string),
            features.LABEL: tf.io.FixedLenFeature([], tf.int64)}
    return _records(patterns, spec).batch(batch_size).map(lambda row: (row[features.CLEAN_TEXT], row[features.LABEL]))


def count_records(patterns: Sequence[str]) -> int:
    return int(tf.data.TFRecordDataset(list_files(patterns), compression_type="GZIP")
               .reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def model_inputs(transformed: Dict[str, tf.Tensor], input_names: Sequence[str],
                 batched: bool = True) -> Dict[str, tf.Tensor]:
    """The model's named inputs from Transform's output: token ids cut to the longest real
    length present (one review's own length when not `batched`), the cleaned text as is."""
    inputs = {}
    for name in input_names:
        if name == features.TOKEN_IDS:
            lengths = transformed[features.NUM_TOKENS]
            longest = tf.maximum(tf.cast(tf.reduce_max(lengths), tf.int32), 1)
            inputs[name] = transformed[name][:, :longest] if batched else transformed[name][:longest]
        elif name == features.CLEAN_TEXT:
            inputs[name] = transformed[name]
        else:
            raise ValueError(f"no model input is called {name!r}")
    return inputs
