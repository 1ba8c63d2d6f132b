"""The wide tower: distinct hashed uni+bigrams, NB log-count ratios, logit = sum(r * w) + b."""
import numpy as np
import pytest
import tensorflow as tf

from models.wide import NbLinearTower, hashed_ngrams, nb_log_ratios

BUCKETS = 1 << 12


def test_each_distinct_word_and_bigram_counts_once_per_review():
    rows, ids = (t.numpy() for t in hashed_ngrams(tf.constant(["good good film", "", "film"]), BUCKETS))
    # review 0: good, film, "good good", "good film" (the repeated word once); review 1 nothing; review 2 film
    assert sorted(rows.tolist()) == [0, 0, 0, 0, 2]
    film = tf.strings.to_hash_bucket_fast(["film"], BUCKETS).numpy()[0]
    assert ids[rows == 2].tolist() == [film] and film in ids[rows == 0]


def test_ratios_point_to_the_label_a_phrase_occurs_with():
    batches = [(np.array([b"great fun", b"great plot", b"awful plot"]), np.array([1, 1, 0]))]
    ratios = nb_log_ratios(batches, BUCKETS)
    great, awful, plot = tf.strings.to_hash_bucket_fast(["great", "awful", "plot"], BUCKETS).numpy()
    assert ratios[great] > 0 > ratios[awful]
    # "plot" occurs once with each label; positives hold more phrases, so its share there is smaller
    assert ratios[awful] < ratios[plot] < ratios[great]


def test_logit_is_the_sum_of_ratio_times_weight_over_distinct_phrases_plus_bias():
    ratios = np.linspace(-1, 1, BUCKETS).astype(np.float32)
    tower = NbLinearTower(BUCKETS, ratios)
    texts = tf.constant(["a b a", "", "c"])
    tower(texts)
    weights = np.random.default_rng(0).normal(size=BUCKETS).astype(np.float32)
    tower.weight.assign(weights)
    tower.bias.assign(0.25)
    rows, ids = (t.numpy() for t in hashed_ngrams(texts, BUCKETS))
    expected = [0.25 + sum(ratios[i] * weights[i] for i in ids[rows == row]) for row in range(3)]
    np.testing.assert_allclose(tower(texts).numpy().reshape(-1), expected, rtol=1e-5)
    assert [w.name.split("/")[-1].split(":")[0] for w in tower.trainable_weights] == ["weight", "bias"]


def test_ratios_must_match_the_buckets():
    with pytest.raises(ValueError, match="expected"):
        NbLinearTower(BUCKETS, np.zeros(10, np.float32))
