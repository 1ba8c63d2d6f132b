"""Exports the trained model with the transform graph embedded and two signatures.

- `serving_default`: a batch of raw review strings -> probability and label. What TF Serving
  and `imdb-pipeline predict` call; preprocessing happens inside, exactly as in training.
- `serving_examples`: serialized tf.Examples (with a `text` feature) -> the same outputs. What
  TFMA's Evaluator calls on the eval split.

A model reading token ids scores a batch in length-sorted sub-batches, each cut to its own
longest review: a GRU runs one step per token position for the whole batch, so one long review
in a batch of 256 would otherwise make all 256 run its length (TFMA's batches of the eval split
and a server's batched requests are both like that).

With `xla`, the raw-text signature runs the GRU tower compiled by XLA (bench/serving.py: ~4x
faster per review on CPU), each sub-batch padded to one of a few shapes so that XLA compiles a
handful of programs, not one per review length; the SavedModel then carries TF Serving warmup
requests for exactly those shapes (features.WARMUP_FILE), so a server compiles
them while loading, not on its first requests. TF Serving runs XLA on CPU only when started with
`--xla_cpu_compilation_enabled=true`, which is why this is a setting and not the default. The
examples signature (TFMA's) stays uncompiled: its one pass over the eval split would spend more
time compiling than it saves.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from models import features
from models.datasets import model_inputs
from models.function_library import prune_unreachable_functions
from models.gru import LOGIT_LAYER

SUB_BATCH = 32
XLA_LENGTH_STEP = 64          # sub-batch lengths are padded up to a multiple of this ...
XLA_ROWS = (1, 8, SUB_BATCH)  # ... and rows up to one of these: 3 x 10 programs at max_tokens 600
WARMUP_WORD = b"movie"  # any word: one token per word, so a review of n words has n tokens

Scorer = Callable[[Dict[str, tf.Tensor]], tf.Tensor]  # model inputs -> [batch] probabilities


def _score(model: keras.Model, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    return tf.reshape(model(inputs, training=False), [-1])


def _padded_size(size: tf.Tensor, step: int) -> tf.Tensor:
    return (size + step - 1) // step * step


def xla_scorer(model: keras.Model) -> Scorer:
    """The model's probabilities with its GRU tower (token ids -> logit) compiled by XLA on
    padded shapes and whatever follows the tower (a wide tower, the stack) left as it is: XLA
    cannot take the string inputs of the wide tower. Padding never changes a score (the GRU
    and its pooling are masked; padded rows are dropped)."""
    logit = model.get_layer(LOGIT_LAYER).output
    tower = keras.Model(model.get_layer(features.TOKEN_IDS).input, logit)
    others = [name for name in model.input_names if name != features.TOKEN_IDS]
    after_tower = keras.Model([logit] + [model.get_layer(name).input for name in others], model.output)
    compiled = tf.function(lambda token_ids: tower(token_ids, training=False), jit_compile=True)
    rows_choices = tf.constant(XLA_ROWS, tf.int32)

    def score(inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        token_ids = inputs[features.TOKEN_IDS]
        rows, steps = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        padded_rows = tf.reduce_min(tf.where(rows_choices >= rows, rows_choices, tf.reduce_max(rows_choices)))
        padded_rows = tf.maximum(padded_rows, rows)  # a caller's sub-batch larger than SUB_BATCH
        padding = [[0, padded_rows - rows], [0, _padded_size(steps, XLA_LENGTH_STEP) - steps]]
        tower_logit = compiled(tf.pad(token_ids, padding, constant_values=features.PADDING_ID))[:rows]
        return tf.reshape(after_tower([tower_logit] + [inputs[name] for name in others], training=False), [-1])

    return score


def score_by_length(model: keras.Model, inputs: Dict[str, tf.Tensor], lengths: tf.Tensor,
                    sub_batch: int = SUB_BATCH, xla: bool = False) -> tf.Tensor:
    """[batch] probabilities, computed `sub_batch` reviews at a time in order of length (with
    `xla`, through `xla_scorer`)."""
    scorer = xla_scorer(model) if xla else lambda chunk: _score(model, chunk)
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
        return index + 1, scores.write(index, scorer(chunk))

    scores = tf.TensorArray(tf.float32, size=chunks, infer_shape=False, element_shape=tf.TensorShape([None]))
    _, scores = tf.while_loop(lambda index, _: index < chunks, score_chunk, (tf.constant(0), scores))
    in_order = tf.cond(chunks > 0, scores.concat, lambda: tf.zeros([0], tf.float32))
    return tf.scatter_nd(order[:, tf.newaxis], in_order, [count])


def _predict(model: keras.Model, transform_layer, texts: tf.Tensor, xla: bool = False) -> dict:
    transformed = transform_layer({features.RAW_TEXT: tf.reshape(texts, [-1, 1])})
    inputs = model_inputs(transformed, model.input_names)
    if features.TOKEN_IDS in inputs:
        probability = score_by_length(model, inputs, transformed[features.NUM_TOKENS], xla=xla)
    else:
        probability = _score(model, inputs)
    return {features.PROBABILITY: probability,
            features.PREDICTED_LABEL: tf.cast(probability >= 0.5, tf.int64)}


def warmup_batches(longest: int) -> List[List[bytes]]:
    """Review batches that make the XLA-compiled signature meet every padded shape it can:
    each row choice x each length step up to `longest` tokens (the transform's cap)."""
    lengths = range(XLA_LENGTH_STEP, _padded_size(longest, XLA_LENGTH_STEP) + 1, XLA_LENGTH_STEP)
    return [[b" ".join([WARMUP_WORD] * length)] * rows for rows in XLA_ROWS for length in lengths]


def write_warmup_requests(export_dir: str, batches: List[List[bytes]]) -> str:
    """TF Serving's warmup file: one PredictionLog (raw-text signature request) per batch."""
    path = os.path.join(export_dir, features.WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for batch in batches:
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
                signature_name=features.SERVING_SIGNATURE))
            request.inputs[features.RAW_TEXT].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def export_serving_model(model: keras.Model, transform_output: tft.TFTransformOutput, export_dir: str,
                         xla: bool = False) -> None:
    """Saves the model with both signatures; `xla` compiles the raw-text one's GRU tower (a model
    without token ids has no GRU: it is refused) and adds the matching warmup requests."""
    if xla and features.TOKEN_IDS not in model.input_names:
        raise ValueError("serving_xla compiles the GRU tower; this model reads no token ids (the hub family)")
    model.tft_layer = transform_output.transform_features_layer()  # tracked, so its assets are saved
    text_spec = {features.RAW_TEXT: transform_output.raw_feature_spec()[features.RAW_TEXT]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve_text(text):
        return _predict(model, model.tft_layer, text, xla=xla)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        parsed = tf.io.parse_example(examples, text_spec)
        return _predict(model, model.tft_layer, parsed[features.RAW_TEXT])

    # Without the Keras layers' call traces (only the two signatures are ever called: TF Serving,
    # TFMA as tf_generic, the canary, `predict`), the SavedModel loads in ~2 s instead of ~8 s.
    model.save(export_dir, save_format="tf", save_traces=False, signatures={
        features.SERVING_SIGNATURE: serve_text.get_concrete_function(),
        features.EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
    })
    prune_unreachable_functions(export_dir)
    if xla:
        cap = model.tft_layer({features.RAW_TEXT: tf.constant([[b" ".join([WARMUP_WORD] * 100_000)]])})
        write_warmup_requests(export_dir, warmup_batches(int(cap[features.NUM_TOKENS][0])))
