"""The project's one text clean-up, in the two forms it is needed in: a TF graph and Python.

Transform (and so every exported model) and the Hub module builder call the TF form; the Python
form decides which pretrained words a module can ever see, and is tested to agree with the graph
on tricky inputs. Rules: invalid UTF-8 becomes U+FFFD; Unicode lower-case; typographic
apostrophes become `'`; `<br />` tags become a space; every character that is not `a-z` or `'`
becomes a space; tokens are split on whitespace.
"""
from __future__ import annotations

import re
from typing import List, Optional

import tensorflow as tf

BR_TAG = r"<br\s*/?>"
APOSTROPHES = "\u2018\u2019\u02bc"   # ‘ ’ ʼ, as Word and most web pages write "don’t"
NON_WORD = r"[^a-z']+"
# A bound on the raw bytes looked at per token kept: far above real reviews (the longest IMDB
# review has ~6 bytes a word), so only absurd inputs (a 10 MB request) are cut before cleaning.
BYTES_PER_TOKEN = 32

_BR_RE = re.compile(BR_TAG)
_NON_WORD_RE = re.compile(NON_WORD)
_APOSTROPHE_RE = re.compile(f"[{APOSTROPHES}]")


def max_bytes_for(max_tokens: int) -> int:
    """How many raw bytes of a review can matter when only `max_tokens` tokens are kept."""
    return BYTES_PER_TOKEN * max_tokens


def clean_text(texts: tf.Tensor, max_bytes: Optional[int] = None, tail_bytes: int = 0) -> tf.Tensor:
    """[batch] raw strings -> [batch] cleaned strings (see the module docstring). A text longer
    than `max_bytes` keeps its first `max_bytes - tail_bytes` and its last `tail_bytes` bytes."""
    if max_bytes is not None:
        texts = head_and_tail_bytes(texts, max_bytes, tail_bytes)  # may cut a character: repaired below
    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, f"[{APOSTROPHES}]", "'")
    texts = tf.strings.regex_replace(texts, BR_TAG, " ")
    texts = tf.strings.regex_replace(texts, NON_WORD, " ")
    return tf.strings.strip(texts)


def head_and_tail_bytes(texts: tf.Tensor, max_bytes: int, tail_bytes: int = 0) -> tf.Tensor:
    """Each string cut to at most `max_bytes` (+1 for the space joining its head and tail)."""
    head = tf.strings.substr(texts, 0, max_bytes - tail_bytes)
    if not tail_bytes:
        return head
    lengths = tf.strings.length(texts)
    start = tf.minimum(tf.maximum(lengths - tail_bytes, max_bytes - tail_bytes), lengths)  # never past the end
    tail = tf.strings.substr(texts, start, tf.fill(tf.shape(lengths), tail_bytes))
    return tf.where(lengths > max_bytes, head + " " + tail, tf.strings.substr(texts, 0, max_bytes))


def tokenize(texts: tf.Tensor, max_tokens: Optional[int] = None) -> tf.RaggedTensor:
    """[batch] raw strings -> ragged [batch, (tokens)], at most `max_tokens` tokens each."""
    max_bytes = max_bytes_for(max_tokens) if max_tokens else None
    tokens = tf.strings.split(clean_text(texts, max_bytes))
    return tokens[:, :max_tokens] if max_tokens else tokens


def clean_text_py(text: str) -> str:
    """Python twin of `clean_text` (no byte bound)."""
    text = _APOSTROPHE_RE.sub("'", text.lower())
    return _NON_WORD_RE.sub(" ", _BR_RE.sub(" ", text)).strip()


def tokenize_py(text: str) -> List[str]:
    """Python twin of `tokenize` (no token bound)."""
    return clean_text_py(text).split()
