"""Offline text-embedding modules: real TF, loaded through hub.KerasLayer as the hub model does."""

from __future__ import annotations

import gzip
import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras as keras

from models import hub_module as hm
from models.errors import UserError

DIM = 4
OOV = 8
# "the" repeats (first wins); "," / "2nd" / "u.s." cannot come out of the tokeniser; "Great" is
# lower-cased to "great".
VECTOR_LINES = [
    ("the", [0.1, 0.2, 0.3, 0.4]),
    (",", [9.0, 9.0, 9.0, 9.0]),
    ("good", [1.0, 0.0, 2.0, -1.0]),
    ("movie", [0.5, 0.5, -0.5, 0.25]),
    ("2nd", [7.0, 7.0, 7.0, 7.0]),
    ("don't", [-1.0, 3.0, 0.0, 2.0]),
    ("the", [5.0, 5.0, 5.0, 5.0]),
    ("u.s.", [6.0, 6.0, 6.0, 6.0]),
    ("Great", [2.0, 2.0, 1.0, 0.0]),
]
WORDS = ["the", "good", "movie", "don't", "great"]
VECTORS = np.array([VECTOR_LINES[i][1] for i in (0, 2, 3, 5, 8)], dtype=np.float32)


def write_vectors(path, lines=VECTOR_LINES, header=False):
    text = "".join(f"{w} {' '.join(str(x) for x in v)}\n" for w, v in lines)
    if header:
        text = f"{len(lines)} {len(lines[0][1])}\n" + text
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def row(word):
    return VECTORS[WORDS.index(word)]


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    src = write_vectors(tmp_path_factory.mktemp("vec") / "vectors.txt")
    out = tmp_path_factory.mktemp("m") / "module"
    return hm.build_module_from_word_vectors(src, out, num_oov_buckets=OOV)


@pytest.fixture(scope="module")
def embed(module_dir):
    layer = hub.KerasLayer(str(module_dir))
    return lambda texts: layer(tf.constant(texts)).numpy()


@pytest.mark.parametrize("name", ["v.txt", "v.txt.gz"])
@pytest.mark.parametrize("header", [False, True])
def test_read_word_vectors_formats_filter_and_dedupe(tmp_path, name, header):
    words, vectors = hm.read_word_vectors(write_vectors(tmp_path / name, header=header))
    assert words == WORDS
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, VECTORS)


def test_read_word_vectors_top_n_counts_file_lines(tmp_path):
    words, vectors = hm.read_word_vectors(write_vectors(tmp_path / "v.txt", header=True), top_n=3)
    assert words == ["the", "good"]  # lines 1-3: "the", ",", "good"
    assert vectors.shape == (2, DIM)


@pytest.mark.parametrize(
    "content, message",
    [
        ("good 1 2 3\nbad 1 2\n", "line 2"),
        ("2 3\ngood 1 2 3\nbad 1 2 3 4\n", "line 3"),
        ("good 1 2 x\n", "not a number"),
        (", 1 2\n. 3 4\n42 5 6\n", "no word vectors"),
        ("", "no word vectors"),
        ("good\n", "no vector values"),
    ],
)
def test_read_word_vectors_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        hm.read_word_vectors(path)


def test_read_word_vectors_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        hm.read_word_vectors(tmp_path / "nope.txt.gz")


def test_module_files(module_dir):
    assert (module_dir / "assets" / "vocab.txt").read_text(encoding="utf-8").splitlines() == WORDS
    info = json.loads((module_dir / "module_info.json").read_text(encoding="utf-8"))
    assert (info["dim"], info["vocab_size"], info["num_oov_buckets"]) == (DIM, len(WORDS), OOV)
    assert info["source"] == "vectors.txt"


def test_output_shape_and_sqrtn_value(embed):
    out = embed(["The good movie", "good", "great movie great"])
    assert out.shape == (3, DIM) and out.dtype == np.float32
    by_hand = (row("the") + row("good") + row("movie")) / np.sqrt(3)
    np.testing.assert_allclose(out[0], by_hand, rtol=1e-6)
    np.testing.assert_allclose(out[1], row("good"), rtol=1e-6)
    np.testing.assert_allclose(out[2], (2 * row("great") + row("movie")) / np.sqrt(3), rtol=1e-6)


def test_apostrophes_kept_and_punctuation_split(embed):
    np.testing.assert_allclose(embed(["Don't!"])[0], row("don't"), rtol=1e-6)
    np.testing.assert_allclose(embed(["good,movie."])[0], embed(["good movie"])[0], rtol=1e-6)


def test_empty_and_token_free_texts_are_zero(embed):
    out = embed(["", "   ", "!!! 123 ..."])
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, np.zeros((3, DIM), np.float32))


def test_word_order_does_not_matter(embed):
    a, b = embed(["good movie the zzzunknown", "zzzunknown the movie good"])
    np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("tag", ["<br />", "<br/>", "<BR />", "<br>"])
def test_br_tags_are_spaces(embed, tag):
    # Without the tag rule "br" would be an extra (OOV) token and change the vector.
    np.testing.assert_allclose(embed([f"good{tag}movie"])[0], embed(["good movie"])[0], rtol=1e-6)


def test_oov_words_hash_into_stable_nonzero_buckets(module_dir, embed):
    a, a_again, b = embed(["zzzunknown", "ZZZUNKNOWN", "qqqother"])
    assert np.abs(a).sum() > 0
    np.testing.assert_array_equal(a, a_again)
    # The bucket is StaticVocabularyTable's: vocab size + Fingerprint64(word) % OOV.
    table = tf.saved_model.load(str(module_dir)).embeddings.numpy()
    for word, vec in [("zzzunknown", a), ("qqqother", b)]:
        bucket = int(tf.strings.to_hash_bucket_fast(word, OOV))
        np.testing.assert_array_equal(vec, table[len(WORDS) + bucket])
    # A fresh load of the same module gives the same vector.
    fresh = hub.KerasLayer(str(module_dir))(tf.constant(["zzzunknown"])).numpy()
    np.testing.assert_array_equal(fresh[0], a)


def test_same_seed_same_oov_rows_and_rebuild_in_place(tmp_path):
    first = hm.build_module(WORDS, VECTORS, tmp_path / "m", num_oov_buckets=OOV, seed=3)
    rows_first = tf.saved_model.load(str(first)).embeddings.numpy()
    again = hm.build_module(WORDS, VECTORS, tmp_path / "m", num_oov_buckets=OOV, seed=3)
    np.testing.assert_array_equal(tf.saved_model.load(str(again)).embeddings.numpy(), rows_first)
    other = hm.build_module(WORDS, VECTORS, tmp_path / "other", num_oov_buckets=OOV, seed=4)
    assert not np.array_equal(tf.saved_model.load(str(other)).embeddings.numpy(), rows_first)


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("precious")
    with pytest.raises(UserError, match="not an earlier module"):
        hm.build_module(WORDS, VECTORS, tmp_path / "data", num_oov_buckets=OOV)
    assert (tmp_path / "data" / "keep.txt").read_text() == "precious"


def test_serving_signature(module_dir):
    serve = tf.saved_model.load(str(module_dir)).signatures["serving_default"]
    out = serve(sentences=tf.constant(["good"]))["default"].numpy()
    np.testing.assert_allclose(out[0], row("good"), rtol=1e-6)


def test_frozen_layer_has_no_trainable_weights(module_dir):
    layer = hub.KerasLayer(str(module_dir))
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 1


def test_fine_tuning_updates_the_table(module_dir):
    layer = hub.KerasLayer(str(module_dir), trainable=True, input_shape=[], dtype=tf.string)
    model = keras.Sequential([layer, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    (table,) = layer.trainable_weights
    before = table.numpy().copy()
    texts, labels = tf.constant(["good movie", "zzzunknown"]), tf.constant([[1.0], [-1.0]])
    model.fit(texts, labels, epochs=1, verbose=0)
    after = table.numpy()
    touched = [WORDS.index("good"), WORDS.index("movie"),
               len(WORDS) + int(tf.strings.to_hash_bucket_fast("zzzunknown", OOV))]
    assert all(np.abs(after[i] - before[i]).sum() > 0 for i in touched)
    untouched = [i for i in range(len(before)) if i not in touched]
    np.testing.assert_array_equal(after[untouched], before[untouched])


def test_trained_embedding_round_trip(tmp_path):
    vocab = ["film", "awful", "loved", "it's", "plot"]
    oov = 6
    matrix = np.random.default_rng(7).normal(size=(1 + len(vocab) + oov, 3)).astype(np.float32)
    path = hm.build_module_from_trained_embedding(
        matrix, vocab, tmp_path / "gru", num_oov_buckets=oov
    )
    layer = hub.KerasLayer(str(path))
    out = layer(tf.constant(vocab + ["", "neverseenword"])).numpy()
    for i in range(len(vocab)):
        np.testing.assert_array_equal(out[i], matrix[i + 1])
    np.testing.assert_array_equal(out[len(vocab)], np.zeros(3, np.float32))  # padding row unused
    # The OOV word lands where tf.Transform's StaticVocabularyTable put it during training.
    tft_id = int(tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(vocab, tf.range(len(vocab), dtype=tf.int64)), oov
    ).lookup(tf.constant("neverseenword")))
    np.testing.assert_array_equal(out[-1], matrix[tft_id + 1])


def test_trained_embedding_without_oov_buckets_skips_unknown_words(tmp_path):
    vocab = ["film", "plot"]
    matrix = np.arange(9, dtype=np.float32).reshape(3, 3)
    path = hm.build_module_from_trained_embedding(
        matrix, vocab, tmp_path / "gru", num_oov_buckets=0
    )
    out = hub.KerasLayer(str(path))(tf.constant(["film unknownword", "unknownword"])).numpy()
    np.testing.assert_array_equal(out, [matrix[1], np.zeros(3)])


@pytest.mark.parametrize(
    "rows, vocab, message",
    [
        (1 + 2 + 3 + 1, ["a", "b"], "need 6 rows"),
        (6, ["a", "a"], "more than once"),
        (6, ["a", "b c"], "whitespace"),
    ],
)
def test_trained_embedding_rejects_mismatches(tmp_path, rows, vocab, message):
    with pytest.raises(UserError, match=message):
        hm.build_module_from_trained_embedding(
            np.zeros((rows, 2)), vocab, tmp_path / "m", num_oov_buckets=3
        )
