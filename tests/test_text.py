"""The one text clean-up: the TF graph (Transform, Hub modules) and its Python twin agree."""
import random

import pytest
import tensorflow as tf

from models import text

TRICKY = [
    "It's GREAT!<br />10/10, <BR/>won't   watch again...",
    "<br/><br>x<br  />y<br />",
    "Don’t, can‘t, it\u02bcs",                       # typographic apostrophes
    "Café naïve RÉSUMÉ Ångström",                    # accents
    "İstanbul and the KELVIN sign \u212a",          # lower-casing that lands on ASCII
    "1984 was 2nd-best, 9/10",                       # digits
    "日本語のレビュー とても良い ok",                     # non-Latin script
    "ΣΊΣΥΦΟΣ σοφός Привет мир",
    "tabs\tand\nnew\r\nlines\u00a0nbsp",
    "emoji 👍🏽 great",
    "'quoted' ''double'' '",
    "",
    "   ",
]


def graph_clean(texts, max_bytes=None):
    return [t.decode("utf-8") for t in text.clean_text(tf.constant(texts), max_bytes).numpy()]


@pytest.mark.parametrize("raw", TRICKY)
def test_graph_and_python_agree_on_tricky_inputs(raw):
    assert graph_clean([raw]) == [text.clean_text_py(raw)]


def test_graph_and_python_agree_on_random_mixtures():
    pool = list("abcXYZ '’<>/br") + ["<br />", "É", "ß", "İ", "\u212a", "日", "7", "\t", "\u00a0", "👍"]
    rng = random.Random(7)
    samples = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    assert graph_clean(samples) == [text.clean_text_py(s) for s in samples]


def test_rules_in_examples():
    assert text.clean_text_py(TRICKY[0]) == "it's great won't watch again"
    assert text.clean_text_py("Don’t stop") == "don't stop"
    assert text.tokenize_py("Café 1984 日本") == ["caf"]
    ragged = text.tokenize(tf.constant(["one two three four", "five"]), max_tokens=2)
    assert ragged.to_list() == [[b"one", b"two"], [b"five"]]


def test_invalid_utf8_and_cut_characters_are_replaced_not_fatal():
    assert graph_clean([b"good\xff\xfe film"]) == ["good film"]
    # cutting "é" (2 bytes) in half must not produce invalid UTF-8 downstream
    assert graph_clean(["ab" + "é" * 3], max_bytes=3) == ["ab"]


def test_raw_input_is_bounded_before_cleaning():
    huge = "great " * 2_000_000  # 12 MB
    tokens = text.tokenize(tf.constant([huge]), max_tokens=400)
    assert tokens.row_lengths().numpy().tolist() == [400]
    # real reviews are far below the bound: the longest IMDB review has ~13,700 bytes for 2,470 words
    assert text.max_bytes_for(400) > 13_700 * 400 // 2_470


def test_a_long_raw_review_keeps_its_first_and_last_bytes():
    from models.text import head_and_tail_bytes

    texts = tf.constant(["abcdefghijkl", "abcdefghij", "abc", ""])
    assert head_and_tail_bytes(texts, 10, 3).numpy().tolist() == [b"abcdefg jkl", b"abcdefghij", b"abc", b""]
    assert head_and_tail_bytes(texts, 10).numpy().tolist()[0] == b"abcdefghij"  # no tail: the head only
