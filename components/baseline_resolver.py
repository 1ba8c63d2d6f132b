"""LatestServedModel: the Evaluator's baseline where TFX's Resolver cannot run (OSS Kubeflow).

The open-source KFP backend refuses Resolver tasks, so the latest blessed model cannot be looked
up in ML Metadata there. The Pusher serves exactly the blessed models, one `<serving_dir>/<version>/`
each, so the newest complete version there that loads is the latest blessed model (a version
without its completion marker, or one that fails `tf.saved_model.load`, is skipped with a
warning: components/serving_dir.py `newest_loadable_version`): it is copied into this
component's Model artifact (`Format-Serving/`, the layout the Evaluator reads) and handed to the
Evaluator as `baseline_model`, which keeps the local blessing rule (value threshold, and no worse
than the last blessed model by more than `baseline_margin`).

KFP has no empty artifact: with nothing served yet the artifact is marked `baseline_absent`, and
the container entrypoint (kubeflow/entrypoint.py) drops it, so the Evaluator sees no baseline,
as locally on a first run. The same happens, with a warning, when every served version is broken:
the candidate then only has to pass the absolute thresholds, and its push replaces the broken ones.
"""
# No `from __future__ import annotations`: TFX reads these type hints at decoration time.
import logging
import os

from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Model
from tfx.utils import io_utils, path_utils

from components.serving_dir import complete_versions, newest_loadable_version

log = logging.getLogger("imdb.baseline")

ABSENT_PROPERTY = "baseline_absent"
VERSION_PROPERTY = "served_version"
SOURCE_PROPERTY = "served_from"


@component
def LatestServedModel(serving_dir: Parameter[str], baseline_model: OutputArtifact[Model]):  # pylint: disable=invalid-name
    versions = complete_versions(serving_dir, warn_incomplete=True)
    chosen = newest_loadable_version(serving_dir, versions=versions) if versions else None
    if chosen is None:
        baseline_model.set_int_custom_property(ABSENT_PROPERTY, 1)
        if versions:
            log.warning("none of the %d complete versions under %s loads; the Evaluator runs without a baseline",
                        len(versions), serving_dir)
        else:
            log.info("nothing served under %s yet; the Evaluator runs without a baseline", serving_dir)
        return
    version = chosen[0]
    source = os.path.join(serving_dir, version)
    io_utils.copy_dir(source, path_utils.serving_model_dir(baseline_model.uri))
    baseline_model.set_string_custom_property(VERSION_PROPERTY, version)
    baseline_model.set_string_custom_property(SOURCE_PROPERTY, source)
    log.info("baseline is served version %s (%s)", version, source)
