"""The TF Serving model folder: `<serving_dir>/<numeric version>/saved_model.pb`.

One reading of it for the Pusher (is this model already served?), the Kubeflow baseline
(the last blessed model) and `predict` (the model to load). Local paths or gs:// alike.
"""
import os
from typing import Optional

from tfx.dsl.io import fileio

COMPLETE_MARKER = "saved_model.pb"  # TFX's Pusher copies it last: a half-copied push has none


def newest_complete_version(serving_dir: str) -> Optional[str]:
    """Highest numeric version folder holding a saved_model.pb, or None."""
    if not serving_dir or not fileio.exists(serving_dir):
        return None
    versions = sorted((name.rstrip("/") for name in fileio.listdir(serving_dir) if name.rstrip("/").isdigit()),
                      key=int, reverse=True)
    for version in versions:
        if fileio.exists(os.path.join(serving_dir, version, COMPLETE_MARKER)):
            return version
    return None
