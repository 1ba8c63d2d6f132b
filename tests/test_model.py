"""The masked GRU: padding must not change a review's score; pretrained-embedding rows."""
import gzip
import json

import numpy as np
import pytest
import tensorflow as tf

from models.embeddings import pretrained_embedding_matrix
from models.gru import MaskedMaxMeanPooling, build_gru_model


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(0)
    return build_gru_model("seed", vocab_rows=50, embedding_dim=8, units=6)


def test_seed_architecture_is_embedding_two_grus_and_sigmoid(model):
    kinds = sorted(type(layer).__name__ for layer in model.layers)
    assert kinds == ["Activation", "Dense", "Embedding", "GRU", "GRU", "InputLayer", "PaddingMask"]
    assert model.get_layer("gru_sequence").return_sequences and not model.get_layer("gru_final").return_sequences
    assert model.get_layer("embedding").input_dim == 50
    assert model.get_layer("gru_logit").units == 1
    assert model.layers[-1].activation.__name__ == "sigmoid"


def test_extra_padding_does_not_change_the_output(model):
    review = [5, 9, 3, 17, 2]
    short = np.array([review + [0] * 2])
    long = np.array([review + [0] * 40])
    np.testing.assert_allclose(model.predict(short, verbose=0), model.predict(long, verbose=0), rtol=1e-5)


def test_padding_mask_matters(model):
    """Guard for the test above: without a mask the same padding would move the score."""
    review = np.array([[5, 9, 3, 17, 2] + [0] * 40])
    embedded = model.get_layer("embedding")(review)
    unmasked = model.get_layer("gru_final")(model.get_layer("gru_sequence")(embedded))
    masked_prob = model.predict(review, verbose=0)[0, 0]
    unmasked_prob = tf.sigmoid(model.get_layer("gru_logit")(unmasked)).numpy()[0, 0]
    assert abs(masked_prob - unmasked_prob) > 1e-4


def test_batch_of_mixed_lengths_scores_each_review_as_alone(model):
    a, b = [4, 8, 15], [16, 23, 42, 7, 1, 2]
    batch = np.array([a + [0] * 3, b])
    np.testing.assert_allclose(model.predict(batch, verbose=0)[0], model.predict(np.array([a]), verbose=0)[0],
                               rtol=1e-5)


def test_pretrained_matrix_places_vectors_at_shifted_rows(tmp_path):
    vectors = tmp_path / "vec.txt.gz"
    vectors.write_bytes(gzip.compress(b"good 1 0 0\nbad -1 0 0\nfilm 0 1 0\n"))
    matrix, found = pretrained_embedding_matrix(["good", "plot", "bad"], num_oov_buckets=2,
                                                vectors_path=str(vectors))
    assert matrix.shape == (1 + 3 + 2, 3) and found == 2
    np.testing.assert_array_equal(matrix[0], 0)
    np.testing.assert_array_equal(matrix[1], [1, 0, 0])
    np.testing.assert_array_equal(matrix[3], [-1, 0, 0])
    model = build_gru_model("seed", vocab_rows=6, embedding_dim=8, units=4, embedding_matrix=matrix)
    assert model.get_layer("embedding").output_dim == 3
    np.testing.assert_allclose(model.get_layer("embedding").get_weights()[0], matrix)


def test_pretrained_vectors_are_weights_not_part_of_the_config():
    """The config is saved as JSON beside every SavedModel: vectors in an initializer made it 43 MB."""
    matrix = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    with_vectors = build_gru_model("pooled_bigru", vocab_rows=300, embedding_dim=8, units=4, embedding_matrix=matrix)
    without = build_gru_model("pooled_bigru", vocab_rows=300, embedding_dim=5, units=4)
    np.testing.assert_array_equal(with_vectors.get_layer("embedding").get_weights()[0], matrix)
    assert len(json.dumps(with_vectors.get_config())) < len(json.dumps(without.get_config())) + 100


@pytest.fixture(scope="module")
def pooled():
    tf.keras.utils.set_random_seed(0)
    return build_gru_model("pooled_bigru", vocab_rows=50, embedding_dim=8, units=6)


def test_pooled_bigru_is_padding_blind_and_pools_every_state(pooled):
    assert type(pooled.get_layer("bigru")).__name__ == "Bidirectional"
    assert pooled.get_layer("bigru").forward_layer.return_sequences
    review = [5, 9, 3, 17, 2]
    np.testing.assert_allclose(pooled.predict(np.array([review + [0] * 2]), verbose=0),
                               pooled.predict(np.array([review + [0] * 40]), verbose=0), rtol=1e-5)
    batch = np.array([[4, 8, 15, 0, 0, 0], [16, 23, 42, 7, 1, 2]])
    np.testing.assert_allclose(pooled.predict(batch, verbose=0)[0], pooled.predict(np.array([[4, 8, 15]]), verbose=0)[0],
                               rtol=1e-5)


def test_masked_max_ignores_padding_even_when_every_real_state_is_negative():
    """keras' GlobalMaxPooling1D would return 0 here (a padded state); the masked max must not."""
    states = tf.constant([[[-3.0, -1.0], [-2.0, -5.0], [0.0, 0.0]]])
    mask = tf.constant([[True, True, False]])
    pooled_states = MaskedMaxMeanPooling()(states, mask).numpy()
    np.testing.assert_allclose(pooled_states, [[-2.0, -1.0, -2.5, -3.0]])
    empty = MaskedMaxMeanPooling()(states, tf.constant([[False, False, False]])).numpy()
    np.testing.assert_allclose(empty, [[0.0, 0.0, 0.0, 0.0]])


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="seed, pooled_bigru"):
        build_gru_model("lstm", vocab_rows=5, embedding_dim=2, units=2)
