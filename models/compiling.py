"""The training setup both model families share: Adam, binary cross-entropy, accuracy and AUC."""
from __future__ import annotations

from typing import Union

import tf_keras as keras

LearningRate = Union[float, keras.optimizers.schedules.LearningRateSchedule]


def compile_binary_classifier(model: keras.Model, learning_rate: LearningRate) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="binary_crossentropy",
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")])
    return model
