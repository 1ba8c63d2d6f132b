"""tf.Transform preprocessing: text clean-up, tokens, vocabulary with OOV buckets, padding.

The same graph is embedded in the exported model, so serving cleans and tokenises raw reviews
exactly as training did.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from models import features

DEFAULTS = {"vocab_size": 10_000, "oov_buckets": 1_000, "max_tokens": 400}


def clean_text(texts: tf.Tensor) -> tf.Tensor:
    """Lower-case, `<br />` to space, keep only letters and apostrophes, single spaces."""
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, r"<br\s*/?>", " ")
    texts = tf.strings.regex_replace(texts, r"[^a-z']+", " ")
    return tf.strings.strip(texts)


def tokenize(cleaned: tf.Tensor, max_tokens: int) -> tf.RaggedTensor:
    return tf.strings.split(cleaned)[:, :max_tokens]


def preprocessing_fn(inputs: Dict[str, tf.Tensor], custom_config: Optional[Dict[str, Any]] = None) -> Dict[str, tf.Tensor]:
    """Raw `text`/`label` -> padded token ids, their length, cleaned text and the label."""
    settings = {**DEFAULTS, **(custom_config or {})}
    max_tokens = int(settings["max_tokens"])
    text = tf.reshape(inputs[features.RAW_TEXT], [-1])
    cleaned = clean_text(text)
    tokens = tokenize(cleaned, max_tokens)
    ids = tft.compute_and_apply_vocabulary(
        tokens,
        top_k=int(settings["vocab_size"]),
        num_oov_buckets=int(settings["oov_buckets"]),
        vocab_filename=features.VOCABULARY_NAME,
    )
    shifted = ids + 1  # 0 is reserved for padding; vocabulary ids start at 1, OOV buckets follow
    outputs = {
        features.TOKEN_IDS: shifted.to_tensor(default_value=features.PADDING_ID, shape=[None, max_tokens]),
        features.NUM_TOKENS: tokens.row_lengths(),
        features.CLEAN_TEXT: cleaned,
    }
    if features.LABEL in inputs:
        outputs[features.LABEL] = tf.reshape(inputs[features.LABEL], [-1])
    return outputs
