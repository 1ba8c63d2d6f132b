"""Compiles a TFX pipeline into a KFP v2 YAML (PipelineSpec schema 2.1.0) for kfp or vertex.

The pipeline object comes from `pipeline.pipeline.create_pipeline(config, target=...)`, so this
package knows TFX and KFP but not the project's configuration. Schema 2.1 because the
open-source API server accepts nothing else, and a bare `.yaml` PipelineSpec because the kfp
client uploads only that (or an archive of it); the pipeline root is therefore not in the file
and is given at submission.
"""
from __future__ import annotations

import datetime
import os
import tempfile
from typing import Any, Dict, Iterable, Mapping, Optional

import yaml

from kubeflow import spec_check
from kubeflow.settings import ENTRYPOINT, KubeflowSettings, is_remote
from models.errors import UserError


def check_locations(locations: Mapping[str, Optional[str]], settings: KubeflowSettings) -> None:
    """Refuses paths on this machine: the tasks run in pods that only see object storage."""
    if not settings.require_object_storage:
        return
    if not locations.get("data_root"):
        raise UserError("The Kubeflow pipeline needs data_root: the aclImdb folder or CSV on object storage (gs://...).")
    local = [f"{name} ({value})" for name, value in locations.items() if value and not is_remote(value)]
    if local:
        raise UserError(f"These locations are on this machine, which the pipeline's pods cannot read: "
                        f"{', '.join(local)}; put them on object storage (gs://BUCKET/...) and pass those URIs.")


def pipeline_spec(pipeline: Any, settings: KubeflowSettings, uncached_tasks: Iterable[str] = ()) -> Dict[str, Any]:
    """The PipelineSpec as a dict, checked as the target's API server would check it.

    `uncached_tasks`: tasks whose result depends on bucket contents rather than on their inputs
    (the served baseline, ExampleGen on unpinned data); their caching option is removed.
    """
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2  # pylint: disable=import-outside-toplevel

    runner_config = v2.KubeflowV2DagRunnerConfig(default_image=settings.image, default_commands=list(ENTRYPOINT),
                                                 use_pipeline_spec_2_1=True)
    with tempfile.TemporaryDirectory() as scratch:
        job = v2.KubeflowV2DagRunner(runner_config, output_dir=scratch).run(pipeline, write_out=False)
    spec = job["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    for task_id in uncached_tasks:
        if task_id in tasks:
            tasks[task_id].pop("cachingOptions", None)
    spec_check.raise_for_problems(spec, settings.target)
    return spec


def write_spec(spec: Dict[str, Any], settings: KubeflowSettings) -> str:
    header = (f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n"
              f"# Target: {settings.target} (KFP PipelineSpec {spec['schemaVersion']}); image: {settings.image}\n"
              f"# Compiled {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ} by kubeflow/compiler.py "
              "from pipeline/pipeline.py. The pipeline root is given at submission.\n")
    directory = os.path.dirname(os.path.abspath(settings.output))
    os.makedirs(directory, exist_ok=True)
    with open(settings.output, "w", encoding="utf-8") as handle:
        handle.write(header)
        yaml.safe_dump(spec, handle, sort_keys=True)
    return settings.output
