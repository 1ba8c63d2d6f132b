"""preprocessing_fn through real tf.Transform (Beam in-process) on a handful of reviews."""
import tempfile

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from models import features
from models.preprocessing import head_and_tail, preprocessing_fn
from models.text import clean_text

SETTINGS = {"vocab_size": 3, "oov_buckets": 4, "max_tokens": 6, "tail_tokens": 2, "code_fingerprint": "test"}
RAW_SPEC = {"text": tf.io.FixedLenFeature([1], tf.string), "label": tf.io.FixedLenFeature([1], tf.int64)}


def _rows(texts):
    return [{"text": [t.encode()], "label": [i % 2]} for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """Analyse on a training set, then transform a second set with words never seen."""
    train = _rows(["good good good film film bad", "good film bad", "bad bad good"])
    unseen = _rows(["zebra good", "good<br /><br />film", "a b c d e f g h i j"])
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    out_dir = str(tmp_path_factory.mktemp("tft"))
    with tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        transform_fn = (train, metadata) | tft_beam.AnalyzeDataset(lambda x: preprocessing_fn(x, SETTINGS))
        transformed, _ = ((unseen, metadata), transform_fn) | tft_beam.TransformDataset()
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    return transformed, tft.TFTransformOutput(out_dir)


def test_vocabulary_is_a_readable_file_in_frequency_order(analysed):
    _, output = analysed
    path = output.vocabulary_file_by_name(features.VOCABULARY_NAME)
    assert open(path, encoding="utf-8").read().split() == ["good", "bad", "film"]


def test_ids_are_shifted_so_zero_is_padding(analysed):
    transformed, _ = analysed
    good_film = transformed[1]
    assert list(good_film[features.TOKEN_IDS]) == [1, 3, 0, 0, 0, 0]
    assert good_film[features.NUM_TOKENS] == 2


def test_unseen_words_land_in_oov_buckets(analysed):
    transformed, _ = analysed
    zebra_id = transformed[0][features.TOKEN_IDS][0]
    vocab, oov = SETTINGS["vocab_size"], SETTINGS["oov_buckets"]
    assert vocab + 1 <= zebra_id <= vocab + oov  # after the 3 words, inside the 4 OOV rows
    letters = transformed[2][features.TOKEN_IDS]
    assert all(vocab + 1 <= i <= vocab + oov for i in letters)
    assert len(set(letters.tolist())) > 1  # several buckets are used, not one catch-all id


def test_br_tags_removed_and_sequence_truncated(analysed):
    transformed, _ = analysed
    assert transformed[1][features.CLEAN_TEXT] == b"good film"
    assert transformed[2][features.NUM_TOKENS] == SETTINGS["max_tokens"]
    assert len(transformed[2][features.TOKEN_IDS]) == SETTINGS["max_tokens"]


def test_a_long_review_keeps_its_head_and_its_tail():
    tokens = tf.ragged.constant([[f"w{i}" for i in range(10)], ["a", "b"], []])
    kept = head_and_tail(tokens, max_tokens=6, tail_tokens=2).to_list()
    assert kept[0] == [b"w0", b"w1", b"w2", b"w3", b"w8", b"w9"]
    assert kept[1:] == [[b"a", b"b"], []]
    assert head_and_tail(tokens, 6, 0).to_list()[0] == [f"w{i}".encode() for i in range(6)]  # the seed's cut


def test_clean_text_keeps_letters_and_apostrophes():
    cleaned = clean_text(tf.constant(["It's GREAT!<br />10/10, <BR/>won't   watch again..."])).numpy()[0]
    assert cleaned == b"it's great won't watch again"
    assert clean_text(tf.constant([""])).numpy()[0] == b""




def test_missing_settings_fail_loudly_instead_of_falling_back():
    raw = {"text": tf.constant([["good film"]])}
    with pytest.raises(ValueError, match=r"missing: max_tokens; unknown: none"):
        preprocessing_fn(raw, {k: v for k, v in SETTINGS.items() if k != "max_tokens"})
    with pytest.raises(ValueError, match=r"unknown: epochs"):
        preprocessing_fn(raw, {**SETTINGS, "epochs": 3})
