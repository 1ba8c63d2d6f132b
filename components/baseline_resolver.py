"""LatestServedModel: the Evaluator's baseline where TFX's Resolver cannot run (OSS Kubeflow).

The open-source KFP backend refuses Resolver tasks, so the latest blessed model cannot be looked
up in ML Metadata there. The Pusher serves exactly the blessed models, one `<serving_dir>/<version>/`
each, so the newest complete version there is the latest blessed model: it is copied into this
component's Model artifact (`Format-Serving/`, the layout the Evaluator reads) and handed to the
Evaluator as `baseline_model`, which keeps the local blessing rule (value threshold, and no worse
than the last blessed model by more than `baseline_margin`).

KFP has no empty artifact: with nothing served yet the artifact is marked `baseline_absent`, and
the container entrypoint (kubeflow/entrypoint.py) drops it, so the Evaluator sees no baseline,
as locally on a first run.
"""
# No `from __future__ import annotations`: TFX reads these type hints at decoration time.
import logging
import os

from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Model
from tfx.utils import io_utils, path_utils

from components.serving_dir import newest_complete_version

log = logging.getLogger("imdb.baseline")

ABSENT_PROPERTY = "baseline_absent"
VERSION_PROPERTY = "served_version"
SOURCE_PROPERTY = "served_from"


@component
def LatestServedModel(serving_dir: Parameter[str], baseline_model: OutputArtifact[Model]):  # pylint: disable=invalid-name
    version = newest_complete_version(serving_dir)
    if version is None:
        baseline_model.set_int_custom_property(ABSENT_PROPERTY, 1)
        log.info("nothing served under %s yet; the Evaluator runs without a baseline", serving_dir)
        return
    source = os.path.join(serving_dir, version)
    io_utils.copy_dir(source, path_utils.serving_model_dir(baseline_model.uri))
    baseline_model.set_string_custom_property(VERSION_PROPERTY, version)
    baseline_model.set_string_custom_property(SOURCE_PROPERTY, source)
    log.info("baseline is served version %s (%s)", version, source)
