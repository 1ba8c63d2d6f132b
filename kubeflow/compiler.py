"""Compiles a TFX pipeline into a KFP v2 YAML (PipelineSpec schema 2.1.0) for kfp or vertex.

The pipeline object comes from `pipeline.pipeline.create_pipeline(config, target=...)`, so this
package knows TFX and KFP but not the project's configuration. Schema 2.1 because the
open-source API server accepts nothing else, and a bare `.yaml` PipelineSpec because the kfp
client uploads only that (or an archive of it); the pipeline root is therefore not in the file
and is given at submission.

After TFX compiles, the spec gets what TFX cannot express, by task id -> component -> executor
label: CPU and memory for chosen tasks (`container.resources`), and for S3-compatible storage
(MinIO) the endpoint as `container.env` of every container task plus the Kubernetes secret that
holds the keys, mapped to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY by a second YAML document:
a PlatformSpec, as the kfp SDK and kfp-kubernetes write it (`kubernetes.use_secret_as_env`).
On kfp every container also gets the schemes the shim stages through the launcher's local copies;
on vertex the resolver's ModelBlessing query is narrowed to this pipeline's blessings.
Nothing of the compiling machine's environment is read: every value comes from the settings.
"""
from __future__ import annotations

import datetime
import json
import os
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import yaml

from kubeflow import spec_check
from kubeflow.settings import (ENTRYPOINT, KFP_STAGED_SCHEMES, PIPELINE_NAME_PROPERTY, S3_CA_BUNDLE_ENV,
                               S3_SECRET_KEYS, STAGED_SCHEMES_ENV, KubeflowSettings, is_remote, memory_gb)
from models import storage
from models.errors import UserError

WEB_SCHEMES = ("http", "https")
BLESSING_TITLE = 'schema_title="tfx.ModelBlessing"'  # how TFX's Vertex resolver query names the type


def check_locations(locations: Mapping[str, Optional[str]], settings: KubeflowSettings,
                    web: Iterable[str] = ()) -> None:
    """Refuses schemes the tasks cannot read, and paths on this machine: the tasks run in pods that
    only see object storage (gs://, or s3:// / minio:// with an S3 endpoint). The locations named
    in `web` may also be http(s) URLs (a TF Hub handle)."""
    web = set(web)
    for name, value in locations.items():
        if value and not (name in web and storage.scheme_of(value) in WEB_SCHEMES):
            storage.check_scheme(value, name)
    on_s3 = [f"{name} ({value})" for name, value in locations.items() if value and storage.is_s3(value)]
    if on_s3 and settings.target == "vertex":
        raise UserError(f"Vertex AI Pipelines reads gs://, not S3: {', '.join(on_s3)}; copy them to "
                        "gs://BUCKET/... and pass those URIs.")
    minio = [f"{name} ({value})" for name, value in locations.items() if value and storage.scheme_of(value) == "minio"]
    if minio and settings.target == "kfp" and settings.require_object_storage and not settings.s3_endpoint:
        raise UserError(f"minio:// locations need the MinIO endpoint: {', '.join(minio)}; pass --s3-endpoint "
                        "http://HOST:PORT (in a stock KFP install http://minio-service.kubeflow:9000).")
    if not settings.require_object_storage:
        return
    if not locations.get("data_root"):
        raise UserError("The Kubeflow pipeline needs data_root: the aclImdb folder or CSV on object storage "
                        "(gs://... or s3://...).")
    local = [f"{name} ({value})" for name, value in locations.items() if value and not is_remote(value)]
    if local:
        raise UserError(f"These locations are on this machine, which the pipeline's pods cannot read: "
                        f"{', '.join(local)}; put them on object storage (gs://BUCKET/..., or s3://BUCKET/... "
                        "with --s3-endpoint for MinIO) and pass those URIs.")


def executor_label(spec: Dict[str, Any], task_id: str) -> str:
    """The executor of a root task: task -> componentRef -> component's executorLabel."""
    task = spec["root"]["dag"]["tasks"].get(task_id)
    if task is None:
        raise UserError(f"The compiled pipeline has no task {task_id!r}.")
    label = spec["components"][task["componentRef"]["name"]].get("executorLabel")
    if not label or label not in spec["deploymentSpec"]["executors"]:
        raise UserError(f"The task {task_id!r} has no executor in the compiled pipeline.")
    return label


def container_labels(spec: Dict[str, Any]) -> List[str]:
    return sorted(label for label, executor in spec["deploymentSpec"]["executors"].items() if "container" in executor)


def container_resources(cpu: float, memory: str) -> Dict[str, float]:
    """PipelineContainerSpec.ResourceSpec (kfp-pipeline-spec 0.2.x): CPU in cores, memory in GB, the
    same number as request and limit; 0 / '' leaves that resource unset."""
    resources: Dict[str, float] = {}
    if cpu:
        resources.update(cpuRequest=float(cpu), cpuLimit=float(cpu))
    if memory:
        gigabytes = memory_gb(memory)
        resources.update(memoryRequest=gigabytes, memoryLimit=gigabytes)
    return resources


def s3_env(settings: KubeflowSettings) -> List[Dict[str, str]]:
    """The endpoint settings every task needs, in both dialects (tensorflow-io and boto3), from
    models.storage so the tasks and the compiler agree; none when no endpoint is set.

    S3_VERIFY_SSL=0 reaches TensorFlow only: boto3 (Beam) has no variable to skip the check, and
    Beam 2.59's `--s3_verify` takes a string that boto3 reads as a CA bundle path, so
    `--s3_verify=False` breaks every Beam S3 call ("No such file or directory", measured). A CA
    bundle (`s3_ca_bundle`) reaches both: AWS_CA_BUNDLE (boto3), REQUESTS_CA_BUNDLE, S3_CA_FILE
    (tensorflow-io)."""
    if not settings.s3_endpoint:
        return []
    given = {"S3_ENDPOINT": settings.s3_endpoint, "AWS_REGION": settings.s3_region}
    if not settings.s3_verify_ssl:
        given["S3_VERIFY_SSL"] = "0"
    if settings.s3_ca_bundle:
        given.update({name: settings.s3_ca_bundle for name in S3_CA_BUNDLE_ENV})
    values = {**given, **storage.s3_environment(given)}
    return [{"name": name, "value": values[name]} for name in sorted(values)]


def task_env(settings: KubeflowSettings) -> List[Dict[str, str]]:
    """The `container.env` of every task: the S3 settings, and on kfp the schemes the shim stages
    through the launcher's local copies (gs:// included, also without an S3 endpoint: a GKE cluster
    with a gs:// root). Vertex's launcher stages nothing, so gs:// stays in place there."""
    env = s3_env(settings)
    if settings.target == "kfp":
        env.append({"name": STAGED_SCHEMES_ENV, "value": ",".join(KFP_STAGED_SCHEMES)})
    return env


def scope_blessing_queries(spec: Dict[str, Any]) -> None:
    """Narrows, in place, each ModelBlessing query of the Vertex resolver to this pipeline's blessings.

    TFX compiles the latest-blessed-model Resolver into ML Metadata filters that match any blessed
    ModelBlessing of the whole Vertex project and region, so another pipeline's model could become
    the baseline; BlessingGate writes the pipeline name as the custom property PIPELINE_NAME_PROPERTY."""
    clause = f'metadata.{PIPELINE_NAME_PROPERTY}.string_value="{spec["pipelineInfo"]["name"]}"'
    for executor in spec["deploymentSpec"]["executors"].values():
        for query in executor.get("resolver", {}).get("outputArtifactQueries", {}).values():
            text = query.get("filter", "")
            if BLESSING_TITLE in text and clause not in text:
                query["filter"] = f"{text} AND {clause}"


def apply_settings(spec: Dict[str, Any], settings: KubeflowSettings,
                   resources: Optional[Mapping[str, Mapping[str, float]]] = None) -> None:
    """Adds, in place, the task environment to every container and `resources` ({task id:
    ResourceSpec fields}) to those tasks' containers; on vertex, scopes the resolver's queries."""
    executors = spec["deploymentSpec"]["executors"]
    if settings.target == "vertex":
        scope_blessing_queries(spec)
    env = task_env(settings)
    if env:
        names = {item["name"] for item in env}
        for label in container_labels(spec):
            container = executors[label]["container"]
            container["env"] = [item for item in container.get("env", []) if item["name"] not in names]
            container["env"] += [dict(item) for item in env]  # copies: no YAML anchors between executors
    for task_id, fields in (resources or {}).items():
        if fields:
            container = executors[executor_label(spec, task_id)].get("container")
            if container is None:
                raise UserError(f"The task {task_id!r} is not a container task; it cannot get CPU or memory.")
            container["resources"] = {**container.get("resources", {}), **fields}


def platform_spec(spec: Dict[str, Any], settings: KubeflowSettings) -> Optional[Dict[str, Any]]:
    """The PlatformSpec document mapping the S3 secret's keys into every container task, or None."""
    if not settings.s3_endpoint:
        return None
    secret_as_env = [{"secretName": settings.s3_secret,
                      "keyToEnv": [{"secretKey": key, "envVar": var} for key, var in S3_SECRET_KEYS]}]
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
        label: {"secretAsEnv": secret_as_env} for label in container_labels(spec)}}}}}
    found = spec_check.platform_problems(platform, spec)
    if found:
        raise UserError("The compiled platform config would be refused: " + "; ".join(found) + ".")
    return json.loads(json.dumps(platform))  # no YAML anchors for the shared list


def pipeline_spec(pipeline: Any, settings: KubeflowSettings, uncached_tasks: Iterable[str] = (),
                  resources: Optional[Mapping[str, Mapping[str, float]]] = None) -> Dict[str, Any]:
    """The PipelineSpec as a dict, checked as the target's API server would check it.

    `uncached_tasks`: tasks whose result depends on bucket contents rather than on their inputs
    (the served baseline, ExampleGen on unpinned data); their caching option is removed.
    `resources`: {task id: ResourceSpec fields} (see container_resources).
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
    apply_settings(spec, settings, resources)
    spec_check.raise_for_problems(spec, settings.target)
    return spec


def write_spec(spec: Dict[str, Any], settings: KubeflowSettings, platform: Optional[Dict[str, Any]] = None) -> str:
    """Writes the PipelineSpec, then the PlatformSpec (if any) as a second YAML document."""
    header = (f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n"
              f"# Target: {settings.target} (KFP PipelineSpec {spec['schemaVersion']}); image: {settings.image}\n"
              f"# Compiled {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ} by kubeflow/compiler.py "
              "from pipeline/pipeline.py. The pipeline root is given at submission.\n")
    if platform:
        header += (f"# Second document: Kubernetes platform config (S3 keys from the secret {settings.s3_secret}).\n")
    documents: Tuple[Dict[str, Any], ...] = (spec, platform) if platform else (spec,)
    directory = os.path.dirname(os.path.abspath(settings.output))
    os.makedirs(directory, exist_ok=True)
    with open(settings.output, "w", encoding="utf-8") as handle:
        handle.write(header)
        yaml.safe_dump_all(documents, handle, sort_keys=True)
    return settings.output
