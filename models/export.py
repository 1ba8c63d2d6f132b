"""Exports the trained model with the transform graph embedded and two signatures.

- `serving_default`: a batch of raw review strings -> probability and label. What TF Serving
  and `imdb-pipeline predict` call; preprocessing happens inside, exactly as in training.
- `serving_examples`: serialized tf.Examples (with a `text` feature) -> the same outputs. What
  TFMA's Evaluator calls on the eval split.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import features
from models.datasets import model_inputs


def _predict(model: keras.Model, transform_layer, family: str, texts: tf.Tensor) -> dict:
    transformed = transform_layer({features.RAW_TEXT: tf.reshape(texts, [-1, 1])})
    probability = tf.reshape(model(model_inputs(transformed, family), training=False), [-1])
    return {features.PROBABILITY: probability,
            features.PREDICTED_LABEL: tf.cast(probability >= 0.5, tf.int64)}


def export_serving_model(model: keras.Model, transform_output: tft.TFTransformOutput, family: str,
                         export_dir: str) -> None:
    model.tft_layer = transform_output.transform_features_layer()  # tracked, so its assets are saved
    text_spec = {features.RAW_TEXT: transform_output.raw_feature_spec()[features.RAW_TEXT]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve_text(text):
        return _predict(model, model.tft_layer, family, text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        parsed = tf.io.parse_example(examples, text_spec)
        return _predict(model, model.tft_layer, family, parsed[features.RAW_TEXT])

    model.save(export_dir, save_format="tf", signatures={
        features.SERVING_SIGNATURE: serve_text.get_concrete_function(),
        features.EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
    })
