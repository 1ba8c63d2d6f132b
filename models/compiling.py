"""The classifier head and training setup every model shares: one logit -> sigmoid, Adam,
binary cross-entropy, accuracy and AUC."""
from __future__ import annotations

from typing import Dict, Union

import tf_keras as keras

from models import features

LearningRate = Union[float, keras.optimizers.schedules.LearningRateSchedule]


def compile_binary_classifier(model: keras.Model, learning_rate: LearningRate) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="binary_crossentropy",
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")])
    return model


def binary_classifier(inputs: Dict[str, keras.KerasTensor], logit: keras.KerasTensor, name: str,
                      learning_rate: LearningRate) -> keras.Model:
    """A compiled model from named inputs and a [batch, 1] logit; its output, named `probability`,
    is what every signature reports (and the logit is that layer's input: models/stacking.py)."""
    probability = keras.layers.Activation("sigmoid", name=features.PROBABILITY)(logit)
    return compile_binary_classifier(keras.Model(inputs, probability, name=name), learning_rate)
