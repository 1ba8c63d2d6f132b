"""Pusher executor that does not push a model that TF Serving already has.

TFX's Pusher copies the model to a fresh `<serving_dir>/<unix time>/` each time it runs. When a
pipeline re-runs with nothing changed, the cached Trainer hands the very same model to a new
Evaluator run (its baseline moved to that model), and the stock Pusher would serve an identical
copy under a new version. Here the newest version's content digest is compared first; an
identical model is recorded as pushed at that existing version, and nothing is copied.
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Dict, List

from tfx import types
from tfx.components.pusher import component as tfx_pusher_component
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.serving_dir import newest_complete_version

log = logging.getLogger("imdb.pusher")


def model_digest(model_dir: str) -> str:
    """SHA-256 over the relative paths and bytes of every file of a SavedModel folder."""
    digest = hashlib.sha256()
    for root, _, files in sorted(fileio.walk(model_dir)):
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, model_dir).encode())
            with fileio.open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


class Executor(tfx_pusher_executor.Executor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        serving_dir = destination.filesystem.base_directory
        version = newest_complete_version(serving_dir)
        if version and self.CheckBlessing(input_dict):
            model_path = self.GetModelPath(input_dict)
            if model_digest(model_path) == model_digest(os.path.join(serving_dir, version)):
                model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
                self._MarkPushed(model_push, pushed_destination=os.path.join(serving_dir, version),
                                 pushed_version=version)
                model_push.set_int_custom_property("already_serving", 1)
                log.info("this model is already served as version %s; nothing copied", version)
                return
        super().Do(input_dict, output_dict, exec_properties)


class IdempotentPusher(tfx_pusher_component.Pusher):
    """TFX Pusher (blessed models only, `<serving_dir>/<version>/`) with the executor above."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
