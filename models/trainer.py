"""TFX Trainer entry point (`run_fn`) for both model families.

Settings arrive in `fn_args.custom_config` as TrainerSettings (built from PipelineConfig by the
pipeline), so the Trainer has no globals and no defaults of its own. Progress goes to the
`imdb.trainer` logger (the local runner shows it; on Kubeflow it is the task's log), TensorBoard
logs and the per-round history go to the model run folder, and the exported model carries the
transform graph and both signatures.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Dict, List, Optional

import numpy as np

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx.components.trainer.fn_args_utils import FnArgs

from models import datasets, features, storage
from models.embedding_report import format_report, report_for_gru_model
from models.digest import content_digest
from models.embeddings import pretrained_embedding_matrix
from models.errors import UserError
from models.export import export_serving_model
from models.compiling import LearningRate, binary_classifier
from models.gru import build_gru_model
from models.settings import TrainerSettings, settings_from
from models.stacking import fit_logistic, stacked_logit, tower_logits
from models.wide import DEFAULT_BUCKETS, NbLinearTower, nb_log_ratios

EMBEDDING_METADATA = "embedding_metadata.tsv"
EMBEDDING_REPORT_DIR = "embedding_report"
HISTORY_FILE = "training_history.json"  # read back by the run summary and the HTML report
# The wide tower is fitted first, alone: a linear model on 22,500 reviews peaks on the eval split
# after 1-3 epochs at this rate (0.905-0.909 measured), long before the GRU does.
WIDE_LEARNING_RATE = 3e-3
WIDE_EPOCHS = 4

log = logging.getLogger("imdb.trainer")


class ProgressLogger(keras.callbacks.Callback):
    """A line every `every` batches with speed and ETA, and one per evaluation round."""

    def __init__(self, steps_per_round: int, rounds_per_epoch: int = 1, every: int = 50):
        super().__init__()
        self._steps, self._rounds, self._every, self._start = steps_per_round, rounds_per_epoch, every, 0.0
        self._epoch = 0

    def _name(self, keras_epoch: int) -> str:
        """Keras 'epochs' are evaluation rounds; show real epochs (0.5, 1, 1.5 ... at 2 rounds)."""
        return f"epoch {(keras_epoch + 1) / self._rounds:g}"

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._start = epoch, time.time()

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        if done % self._every == 0:
            elapsed = time.time() - self._start
            eta = elapsed / done * max(self._steps - done, 0)
            log.info("%s step %d/%d loss %.4f acc %.4f (%.0fs, eta %.0fs)", self._name(self._epoch), done,
                     self._steps, logs.get("loss", float("nan")), logs.get("accuracy", float("nan")), elapsed, eta)

    def on_epoch_end(self, epoch, logs=None):
        shown = ", ".join(f"{key} {value:.4f}" for key, value in sorted((logs or {}).items()))
        log.info("%s done in %.0fs: %s", self._name(epoch), time.time() - self._start, shown)


def vocabulary_words(transform_output: tft.TFTransformOutput) -> list:
    path = transform_output.vocabulary_file_by_name(features.VOCABULARY_NAME)
    with tf.io.gfile.GFile(path, "rb") as handle:
        return [line.rstrip(b"\n").decode("utf-8", errors="replace") for line in handle]


def _pinned_hub_handle(settings: TrainerSettings) -> str:
    """The module folder to load; with hub_sha256, only if its content has that digest."""
    import tensorflow_hub as hub  # pylint: disable=import-outside-toplevel  (only the hub family needs it)

    folder = hub.resolve(settings.hub_handle)
    if settings.hub_sha256:
        found = content_digest(folder)
        if found != settings.hub_sha256:
            raise UserError(f"The Hub module {settings.hub_handle} has content SHA-256 {found}, not the pinned "
                            f"{settings.hub_sha256}; it changed since it was pinned (check it, then update "
                            "--hub-sha256).")
    return folder


def _text_input() -> keras.KerasTensor:
    return keras.Input(shape=(), dtype=tf.string, name=features.CLEAN_TEXT)


def _fit_wide_tower(fn_args: FnArgs, feature_spec: Dict, settings: TrainerSettings) -> NbLinearTower:
    """Counts the NB ratios over the train split and fits the tower alone (best eval epoch kept)."""
    started = time.time()
    ratios = nb_log_ratios(datasets.labelled_texts(fn_args.train_files), DEFAULT_BUCKETS)
    tower = NbLinearTower(DEFAULT_BUCKETS, ratios, name="nb_wide")
    text = _text_input()
    alone = binary_classifier({features.CLEAN_TEXT: text}, tower(text), "nb_wide", WIDE_LEARNING_RATE)
    names = [features.CLEAN_TEXT]
    train = datasets.make_dataset(fn_args.train_files, feature_spec, names, settings.batch_size, shuffle=True,
                                  seed=settings.seed, shuffle_buffer=datasets.MAX_SHUFFLE_BUFFER)
    evaluation = datasets.make_dataset(fn_args.eval_files, feature_spec, names, settings.batch_size, shuffle=False)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True, patience=1)
    history = alone.fit(train, epochs=WIDE_EPOCHS, validation_data=evaluation, callbacks=[stop], verbose=0)
    best = int(np.argmin(history.history["val_loss"]))
    log.info("wide tower alone (NB-weighted hashed uni+bigrams, %d buckets): eval accuracy %.4f after %d epoch(s), "
             "%.0fs", DEFAULT_BUCKETS, history.history["val_accuracy"][best], best + 1, time.time() - started)
    tower.trainable = False
    return tower


def _learning_rate(settings: TrainerSettings, total_steps: int) -> LearningRate:
    if settings.learning_rate_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(settings.learning_rate, decay_steps=total_steps)
    return settings.learning_rate


def _build_model(settings: TrainerSettings, vocabulary: list, total_steps: int) -> keras.Model:
    """The family's model alone (the deep tower)."""
    learning_rate = _learning_rate(settings, total_steps)
    if settings.model == "hub":
        from models.hub_classifier import build_hub_model  # pylint: disable=import-outside-toplevel  (tensorflow_hub)

        return build_hub_model(_pinned_hub_handle(settings), settings.hub_trainable, learning_rate)
    matrix = None
    if settings.pretrained_embeddings:
        matrix, found = pretrained_embedding_matrix(vocabulary, settings.oov_buckets,
                                                    settings.pretrained_embeddings, seed=settings.seed)
        log.info("embedding initialised from %s: %d/%d vocabulary words found",
                 settings.pretrained_embeddings, found, len(vocabulary))
    return build_gru_model(settings.gru_architecture, 1 + len(vocabulary) + settings.oov_buckets,
                           settings.embedding_dim, settings.gru_units, learning_rate, embedding_matrix=matrix)


def _stack(deep: keras.Model, wide: NbLinearTower, fn_args: FnArgs, feature_spec: Dict,
           settings: TrainerSettings) -> keras.Model:
    """One model: both towers' logits, weighted by a logistic regression fitted on the eval split."""
    inputs = dict(zip(deep.input_names, deep.inputs))
    text = inputs.setdefault(features.CLEAN_TEXT, _text_input())
    towers = [deep.get_layer(features.PROBABILITY).input, wide(text)]  # the deep model's own logit tensor
    scorer = keras.Model(inputs, towers)
    evaluation = datasets.make_dataset(fn_args.eval_files, feature_spec, scorer.input_names, settings.batch_size,
                                       shuffle=False)
    columns, labels = tower_logits(scorer, evaluation)
    weights, bias = fit_logistic(columns, labels)
    accuracy = lambda logit: float(np.mean((logit > 0) == (labels > 0.5)))  # noqa: E731
    stacked = columns @ weights + bias
    log.info("eval accuracy: deep tower %.4f, wide tower %.4f, stacked %.4f (logit = %.3f deep + %.3f wide %+.3f)",
             accuracy(columns[:, 0]), accuracy(columns[:, 1]), accuracy(stacked), weights[0], weights[1], bias)
    return binary_classifier(inputs, stacked_logit(towers, weights, bias), f"{deep.name}_and_nb_wide",
                             settings.learning_rate)


def _write_embedding_metadata(log_dir: str, vocabulary: list, oov_buckets: int) -> str:
    """Row labels for TensorBoard's embedding projector (same row layout as the ids)."""
    tf.io.gfile.makedirs(log_dir)
    path = os.path.join(log_dir, EMBEDDING_METADATA)
    rows = ["<pad>"] + [word or "<empty>" for word in vocabulary] + [f"<oov-{i}>" for i in range(oov_buckets)]
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write("\n".join(rows) + "\n")
    return path


def _write_embedding_report(model: keras.Model, vocabulary: list, model_run_dir: str) -> None:
    """Where words lie along the learned sentiment direction (models.embedding_report); never fails training."""
    try:
        report = report_for_gru_model(model, vocabulary, os.path.join(model_run_dir, EMBEDDING_REPORT_DIR))
    except Exception as error:  # pylint: disable=broad-except
        log.warning("embedding report skipped: %s", error)
        return
    log.info("learned embedding\n%s", format_report(report))


def write_history(history: Dict[str, List[float]], rounds_per_epoch: int, model_run_dir: str) -> str:
    """Loss and metrics per evaluation round, train and eval, for the run report's curves."""
    names = sorted(history)
    rounds = [{"round": index + 1, "epoch": (index + 1) / rounds_per_epoch,
               **{name: float(history[name][index]) for name in names}}
              for index in range(len(history.get("loss", [])))]
    val_losses = [row.get("val_loss", math.inf) for row in rounds]
    best = 1 + val_losses.index(min(val_losses)) if rounds else None
    path = os.path.join(model_run_dir, HISTORY_FILE)
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(path, "w") as handle:
        json.dump({"rounds_per_epoch": rounds_per_epoch, "best_round": best, "history": rounds}, handle, indent=1)
    return path


def run_fn(fn_args: FnArgs) -> None:
    settings = settings_from(TrainerSettings, fn_args.custom_config, "Trainer")
    keras.utils.set_random_seed(settings.seed)
    if settings.deterministic_ops:
        tf.config.experimental.enable_op_determinism()
    transform_output = tft.TFTransformOutput(storage.loadable_path(fn_args.transform_output))
    feature_spec = transform_output.transformed_feature_spec()
    vocabulary = vocabulary_words(transform_output)

    train_count = datasets.count_records(fn_args.train_files)
    steps_per_epoch = settings.steps_per_epoch or max(1, math.ceil(train_count / settings.batch_size))
    log.info("%s model, %d training reviews, vocabulary %d words + %d OOV buckets, %d epoch(s) x %d steps",
             settings.model, train_count, len(vocabulary), settings.oov_buckets, settings.epochs, steps_per_epoch)
    wide = _fit_wide_tower(fn_args, feature_spec, settings) if settings.wide_tower else None
    rounds = settings.evaluations_per_epoch
    steps_per_round = max(1, steps_per_epoch // rounds)
    model = _build_model(settings, vocabulary, total_steps=settings.epochs * rounds * steps_per_round)
    # A buffer as large as the split (capped) gives a true shuffle whatever order the files hold.
    train = datasets.make_dataset(fn_args.train_files, feature_spec, model.input_names, settings.batch_size,
                                  shuffle=True, seed=settings.seed, repeat=True,
                                  shuffle_buffer=min(train_count, datasets.MAX_SHUFFLE_BUFFER))
    evaluation = datasets.make_dataset(fn_args.eval_files, feature_spec, model.input_names, settings.batch_size,
                                       shuffle=False)
    callbacks = [ProgressLogger(steps_per_round, rounds)]
    if settings.model == "gru":
        _write_embedding_metadata(fn_args.model_run_dir, vocabulary, settings.oov_buckets)
        callbacks.append(keras.callbacks.TensorBoard(
            log_dir=fn_args.model_run_dir, update_freq="epoch", embeddings_freq=1,
            embeddings_metadata={"embedding": EMBEDDING_METADATA}))
    else:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"))
    if settings.early_stopping_patience > 0:
        # The GRU overfits IMDB after a couple of epochs: keep the weights of the best eval round.
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True,
                                                       patience=settings.early_stopping_patience * rounds))
    # Evaluating (and early-stopping) every half epoch picks the best point of IMDB's short
    # fit-then-overfit curve more finely than whole epochs do: +0.7 points test accuracy measured.
    history = model.fit(train, epochs=settings.epochs * rounds, steps_per_epoch=steps_per_round,
                        validation_data=evaluation, callbacks=callbacks, verbose=0)
    write_history(history.history, rounds, fn_args.model_run_dir)
    if settings.model == "gru":
        _write_embedding_report(model, vocabulary, fn_args.model_run_dir)
    if wide is not None:
        model = _stack(model, wide, fn_args, feature_spec, settings)
    export_serving_model(model, transform_output, fn_args.serving_model_dir, xla=settings.serving_xla)
    log.info("model exported to %s", fn_args.serving_model_dir)
