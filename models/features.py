"""Feature names shared by Transform, the Trainer, the exported signatures and the Evaluator."""

RAW_TEXT = "text"
LABEL = "label"

TOKEN_IDS = "token_ids"      # dense int64 [max_tokens], 0 = padding, 1.. = vocabulary then OOV buckets
NUM_TOKENS = "num_tokens"    # int64, real (unpadded) length of TOKEN_IDS
CLEAN_TEXT = "clean_text"    # the cleaned review as one string (input of the TF Hub family)

VOCABULARY_NAME = "vocabulary"  # tft vocabulary file name inside transform_fn/assets
PADDING_ID = 0

# Exported signatures: raw review strings for serving, serialized tf.Examples for TFMA.
SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "serving_examples"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"  # TF Serving replays it while loading a model
PROBABILITY = "probability"
PREDICTED_LABEL = "label"
