"""Compiles the one pipeline definition into a KFP v2 YAML (PipelineSpec schema 2.1.0).

Two targets, one definition (`pipeline.pipeline.create_components`):
  kfp     the open-source KFP backend. Its Argo compiler refuses Resolver tasks, so the
          Evaluator's baseline comes from LatestServedModel (components/baseline_resolver.py).
  vertex  Vertex AI Pipelines, which runs TFX's latest-blessed-model Resolver itself.
Schema 2.1 because the open-source API server accepts nothing else, and a bare `.yaml`
PipelineSpec because the kfp client uploads only that (or an archive of it); the pipeline root
is therefore not in the file and is given at submission.
"""
from __future__ import annotations

import datetime
import os
import tempfile
from typing import Any, Dict, List

import yaml

from kubeflow import spec_check
from kubeflow.settings import ENTRYPOINT, KubeflowSettings, is_remote
from pipeline.configs import SCHEMA_DIR, PipelineConfig
from pipeline.errors import UserError

BASELINE_ID = "LatestServedModel"
EXAMPLE_GEN_ID = "ImdbExampleGen"


def build_components(config: PipelineConfig, target: str) -> List[Any]:
    """The pipeline's nodes for a target: on kfp the baseline comes from the serving folder."""
    from pipeline.pipeline import create_components  # pylint: disable=import-outside-toplevel

    if target != "kfp":
        return create_components(config)
    from components.baseline_resolver import LatestServedModel  # pylint: disable=import-outside-toplevel

    baseline = LatestServedModel(serving_dir=config.resolved_serving_dir).with_id(BASELINE_ID)
    return [baseline] + create_components(config, baseline_model=baseline.outputs["baseline_model"])


def check_locations(config: PipelineConfig, settings: KubeflowSettings) -> None:
    """Refuses paths on this machine: the tasks run in pods that only see object storage."""
    if not settings.require_object_storage:
        return
    locations = {"data_root": config.data_root, "serving_dir": config.resolved_serving_dir,
                 "pretrained_embeddings": config.pretrained_embeddings, "hub_handle": config.hub_handle}
    local = [f"{name} ({value})" for name, value in locations.items() if value and not is_remote(value)]
    if not config.data_root:
        raise UserError("The Kubeflow pipeline needs data_root: the aclImdb folder or CSV on object storage (gs://...).")
    if local:
        raise UserError(f"These locations are on this machine, which the pipeline's pods cannot read: "
                        f"{', '.join(local)}; put them on object storage (gs://BUCKET/...) and pass those URIs.")


def for_target(config: PipelineConfig, settings: KubeflowSettings) -> PipelineConfig:
    """The config as the tasks must see it: the curated schema at its place in the image."""
    if config.schema_dir == SCHEMA_DIR:
        config = config.replace(schema_dir=settings.schema_dir)
    return config


def pipeline_spec(config: PipelineConfig, settings: KubeflowSettings) -> Dict[str, Any]:
    """The PipelineSpec as a dict, checked as the target's API server would check it."""
    from pipeline.pipeline import create_pipeline  # pylint: disable=import-outside-toplevel
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2  # pylint: disable=import-outside-toplevel

    check_locations(config, settings)
    config = for_target(config, settings)
    pipeline = create_pipeline(config, components=build_components(config, settings.target))
    runner_config = v2.KubeflowV2DagRunnerConfig(default_image=settings.image, default_commands=list(ENTRYPOINT),
                                                 use_pipeline_spec_2_1=True)
    with tempfile.TemporaryDirectory() as scratch:
        job = v2.KubeflowV2DagRunner(runner_config, output_dir=scratch).run(pipeline, write_out=False)
    spec = job["pipelineSpec"]
    _uncache_reads_of_outside_state(spec, config)
    spec_check.raise_for_problems(spec, settings.target)
    return spec


def _uncache_reads_of_outside_state(spec: Dict[str, Any], config: PipelineConfig) -> None:
    """Tasks whose result depends on bucket contents, not on their inputs, must not be cached:
    the baseline reads the serving folder, and ExampleGen reads data_root (unless the config
    pins a data snapshot with input_fingerprint)."""
    tasks = spec["root"]["dag"]["tasks"]
    for task_id in (BASELINE_ID,) + (() if config.input_fingerprint else (EXAMPLE_GEN_ID,)):
        if task_id in tasks:
            tasks[task_id].pop("cachingOptions", None)


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


def compile_pipeline(config: PipelineConfig, settings: KubeflowSettings) -> str:
    """Writes the target's YAML to settings.output and returns its path."""
    return write_spec(pipeline_spec(config, settings), settings)
