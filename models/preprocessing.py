"""tf.Transform preprocessing: text clean-up, tokens, vocabulary with OOV buckets, padding.

The same graph is embedded in the exported model, so serving cleans and tokenises raw reviews
exactly as training did (models/text.py), and a raw request is cut to the bytes that can matter
before any cleaning, so an absurdly long one costs no more than a long review.

A review longer than `max_tokens` keeps its first `max_tokens - tail_tokens` and its last
`tail_tokens` tokens: reviewers state their verdict at the end as often as at the start (Sun et
al. 2019 found a head + tail cut of long IMDB reviews better than the head alone; the split here
is the pipeline's own tail_share).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from models import features, text
from models.settings import TransformSettings, settings_from


def head_and_tail(tokens: tf.RaggedTensor, max_tokens: int, tail_tokens: int) -> tf.RaggedTensor:
    """Each row cut to at most `max_tokens`: its head and its last `tail_tokens` tokens."""
    lengths = tokens.row_lengths()
    positions = tf.ragged.range(lengths)
    head = max_tokens - tail_tokens
    keep = (positions < head) | (positions >= tf.expand_dims(lengths, 1) - tail_tokens)
    return tf.ragged.boolean_mask(tokens, keep)


def preprocessing_fn(inputs: Dict[str, tf.Tensor], custom_config: Optional[Dict[str, Any]] = None) -> Dict[str, tf.Tensor]:
    """Raw `text`/`label` -> padded token ids, their length, cleaned text and the label."""
    settings = settings_from(TransformSettings, custom_config, "Transform")
    max_tokens = settings.max_tokens
    raw = tf.reshape(inputs[features.RAW_TEXT], [-1])
    cleaned = text.clean_text(raw, max_bytes=text.max_bytes_for(max_tokens),
                              tail_bytes=text.max_bytes_for(settings.tail_tokens))
    tokens = head_and_tail(tf.strings.split(cleaned), max_tokens, settings.tail_tokens)
    ids = tft.compute_and_apply_vocabulary(
        tokens,
        top_k=settings.vocab_size,
        num_oov_buckets=settings.oov_buckets,
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
