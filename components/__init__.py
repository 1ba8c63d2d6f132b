import os as _os

# TF 2.16 defaults to Keras 3; TFX 1.16, TFMA and tensorflow_hub need Keras 2 (tf_keras).
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
