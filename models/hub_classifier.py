"""The TF Hub family: a pretrained text-embedding module -> Dense(128, relu) -> one logit.

The module takes a batch of (cleaned) review strings, like nnlm-en-dim50; `handle` is a
tfhub.dev/Kaggle URL or a local module folder (e.g. one built by `imdb-pipeline hub build`).
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras

from models import features
from models.compiling import LearningRate, binary_classifier
from models.storage import loadable_path


def build_hub_model(handle: str, trainable: bool = False, learning_rate: LearningRate = 1e-3) -> keras.Model:
    text = keras.Input(shape=(), dtype=tf.string, name=features.CLEAN_TEXT)
    embedded = hub.KerasLayer(loadable_path(handle), trainable=trainable, name="text_embedding")(text)
    hidden = keras.layers.Dense(128, activation="relu", name="hidden")(embedded)
    logit = keras.layers.Dense(1, name="hub_logit")(hidden)
    return binary_classifier({features.CLEAN_TEXT: text}, logit, "hub_classifier", learning_rate)
