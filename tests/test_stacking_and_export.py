"""Stacking the towers' logits, and scoring a batch in length-sorted sub-batches."""
import numpy as np
import pytest
import tensorflow as tf

from models import features
from models.export import score_by_length
from models.gru import build_gru_model
from models.stacking import fit_logistic


def test_fit_logistic_recovers_known_weights():
    rng = np.random.default_rng(0)
    columns = rng.normal(size=(20_000, 2))
    labels = (rng.random(20_000) < 1 / (1 + np.exp(-(1.5 * columns[:, 0] - 0.5 * columns[:, 1] + 0.3)))).astype(float)
    weights, bias = fit_logistic(columns, labels)
    np.testing.assert_allclose(weights, [1.5, -0.5], atol=0.08)
    assert bias == pytest.approx(0.3, abs=0.08)


def test_fit_logistic_stays_finite_on_separable_data():
    """Without the ridge the weight of a separable column grows until the iterations run out."""
    columns = np.array([[-2.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    weights, bias = fit_logistic(columns, np.array([0, 0, 1, 1.0]))
    assert weights[0] == pytest.approx(5.84, rel=0.02) and weights[1] == pytest.approx(0.0, abs=1e-6)
    assert bias == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(3)
    return build_gru_model("pooled_bigru", vocab_rows=30, embedding_dim=4, units=3)


def test_sub_batches_in_length_order_score_each_review_as_alone(model):
    rng = np.random.default_rng(1)
    lengths = np.array([7, 1, 12, 3, 12, 5, 2, 9, 4, 11])
    ids = np.zeros((len(lengths), 12), np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, 30, size=length)
    alone = [model.predict(ids[row:row + 1, :length], verbose=0)[0, 0] for row, length in enumerate(lengths)]
    scored = tf.function(lambda: score_by_length(model, {features.TOKEN_IDS: tf.constant(ids)},
                                                 tf.constant(lengths), sub_batch=3))()
    np.testing.assert_allclose(scored.numpy(), alone, rtol=1e-5)


def test_each_sub_batch_is_cut_to_its_own_longest_review():
    """A probe 'model' answering each row's input width: sorted sub-batches of 3 by length."""
    token_ids = tf.keras.Input(shape=(None,), dtype=tf.int64, name=features.TOKEN_IDS)
    width = tf.keras.layers.Lambda(lambda ids: tf.fill([tf.shape(ids)[0], 1], tf.cast(tf.shape(ids)[1], tf.float32)))
    probe = tf.keras.Model({features.TOKEN_IDS: token_ids}, width(token_ids))
    lengths = tf.constant([9, 1, 2, 9, 3, 5, 1], tf.int64)
    widths = score_by_length(probe, {features.TOKEN_IDS: tf.zeros([7, 9], tf.int64)}, lengths, sub_batch=3)
    # sorted: 1, 1, 2 | 3, 5, 9 | 9 -> widths 2 | 9 | 9, scattered back to the input order
    assert widths.numpy().tolist() == [9, 2, 2, 9, 9, 9, 2]


def test_an_empty_batch_scores_to_nothing(model):
    scored = tf.function(lambda ids, lengths: score_by_length(model, {features.TOKEN_IDS: ids}, lengths))
    empty = scored(tf.zeros([0, 5], tf.int64), tf.zeros([0], tf.int64))
    assert empty.shape == (0,)


def _wide_and_deep(seed: int = 5) -> tf.keras.Model:
    """The default model's shape at toy size: a GRU tower on token ids and an NB tower on the text, stacked."""
    import tf_keras as keras  # the Keras the models are built with

    from models.compiling import binary_classifier
    from models.gru import gru_logit
    from models.stacking import stacked_logit
    from models.wide import NbLinearTower

    keras.utils.set_random_seed(seed)
    token_ids = keras.Input(shape=(None,), dtype=tf.int64, name=features.TOKEN_IDS)
    text = keras.Input(shape=(), dtype=tf.string, name=features.CLEAN_TEXT)
    ratios = np.random.default_rng(seed).normal(size=64).astype(np.float32)
    towers = [gru_logit(token_ids, 30, "pooled_bigru", 4, 3, None), NbLinearTower(64, ratios)(text)]
    inputs = {features.TOKEN_IDS: token_ids, features.CLEAN_TEXT: text}
    return binary_classifier(inputs, stacked_logit(towers, np.array([0.8, 0.5]), 0.1), "toy", 1e-3)


@pytest.mark.parametrize("rows", [1, 5, 11])
def test_xla_scores_equal_the_plain_ones_whatever_the_padding(rows):
    """rows 1, 5 and 11 pad to 1, 8 and 32 rows; lengths up to 70 pad to 64 or 128 steps."""
    model = _wide_and_deep()
    rng = np.random.default_rng(rows)
    lengths = rng.integers(0, 71, size=rows)
    ids = np.zeros((rows, 70), np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, 30, size=length)
    inputs = {features.TOKEN_IDS: tf.constant(ids),
              features.CLEAN_TEXT: tf.constant([f"a good film number {row}" for row in range(rows)])}
    plain, compiled = (tf.function(lambda xla=xla: score_by_length(model, inputs, tf.constant(lengths), xla=xla))()
                       for xla in (False, True))
    np.testing.assert_allclose(compiled.numpy(), plain.numpy(), rtol=1e-4, atol=1e-6)


def test_warmup_batches_cover_every_padded_shape():
    from models.export import XLA_LENGTH_STEP, XLA_ROWS, warmup_batches

    batches = warmup_batches(400)
    shapes = {(len(batch), len(batch[0].split())) for batch in batches}
    assert shapes == {(rows, length) for rows in XLA_ROWS for length in range(64, 449, XLA_LENGTH_STEP)}
