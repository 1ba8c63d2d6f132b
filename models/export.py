"""Exports the trained model with the transform graph embedded and two signatures.

- `serving_default`: a batch of raw review strings -> probability and label. What TF Serving
  and `imdb-pipeline predict` call; preprocessing happens inside, exactly as in training.
- `serving_examples`: serialized tf.Examples (with a `text` feature) -> the same outputs. What
  TFMA's Evaluator calls on the eval split.

A model reading token ids scores a batch in length-sorted sub-batches, each cut to its own
longest review: a GRU runs one step per token position for the whole batch, so one long review
in a batch of 256 would otherwise make all 256 run its length (TFMA's batches of the eval split
and a server's batched requests are both like that).
"""
from __future__ import annotations

from typing import Dict

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import features
from models.datasets import model_inputs

SUB_BATCH = 32


def _score(model: keras.Model, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    return tf.reshape(model(inputs, training=False), [-1])


def score_by_length(model: keras.Model, inputs: Dict[str, tf.Tensor], lengths: tf.Tensor,
                    sub_batch: int = SUB_BATCH) -> tf.Tensor:
    """[batch] probabilities, computed `sub_batch` reviews at a time in order of length."""
    count = tf.size(lengths)
    order = tf.argsort(lengths, stable=True)
    ordered = {name: tf.gather(value, order) for name, value in inputs.items()}
    ordered_lengths = tf.gather(lengths, order)
    chunks = (count + sub_batch - 1) // sub_batch

    def score_chunk(index, scores):
        start = index * sub_batch
        end = tf.minimum(start + sub_batch, count)
        chunk = {name: value[start:end] for name, value in ordered.items()}
        longest = tf.maximum(tf.cast(tf.reduce_max(ordered_lengths[start:end]), tf.int32), 1)
        chunk[features.TOKEN_IDS] = chunk[features.TOKEN_IDS][:, :longest]
        return index + 1, scores.write(index, _score(model, chunk))

    scores = tf.TensorArray(tf.float32, size=chunks, infer_shape=False, element_shape=tf.TensorShape([None]))
    _, scores = tf.while_loop(lambda index, _: index < chunks, score_chunk, (tf.constant(0), scores))
    in_order = tf.cond(chunks > 0, scores.concat, lambda: tf.zeros([0], tf.float32))
    return tf.scatter_nd(order[:, tf.newaxis], in_order, [count])


def _predict(model: keras.Model, transform_layer, texts: tf.Tensor) -> dict:
    transformed = transform_layer({features.RAW_TEXT: tf.reshape(texts, [-1, 1])})
    inputs = model_inputs(transformed, model.input_names)
    if features.TOKEN_IDS in inputs:
        probability = score_by_length(model, inputs, transformed[features.NUM_TOKENS])
    else:
        probability = _score(model, inputs)
    return {features.PROBABILITY: probability,
            features.PREDICTED_LABEL: tf.cast(probability >= 0.5, tf.int64)}


def export_serving_model(model: keras.Model, transform_output: tft.TFTransformOutput, export_dir: str) -> None:
    model.tft_layer = transform_output.transform_features_layer()  # tracked, so its assets are saved
    text_spec = {features.RAW_TEXT: transform_output.raw_feature_spec()[features.RAW_TEXT]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve_text(text):
        return _predict(model, model.tft_layer, text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        parsed = tf.io.parse_example(examples, text_spec)
        return _predict(model, model.tft_layer, parsed[features.RAW_TEXT])

    model.save(export_dir, save_format="tf", signatures={
        features.SERVING_SIGNATURE: serve_text.get_concrete_function(),
        features.EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
    })
