"""Checks a compiled spec the way the backend does before it runs anything.

Open-source KFP (kubeflow/pipelines backend/src/apiserver/template/v2_template.go): the YAML is
parsed strictly into a PipelineSpec (protojson, so an unknown field is an error), schemaVersion
must be 2.1.0, the pipeline name lower-case alphanumerics, '-' or '.', and the root component
present. Its Argo compiler (backend/src/v2/compiler/argocompiler/dag.go) then refuses resolver
and custom-job executors, artifact iterators and conditions on importer tasks, and its driver
never runs a container's `lifecycle.preCacheCheck` (which TFX's FileBasedExampleGen relies on). For both targets
every reference must resolve (component, executor, producer task and output, root parameter)
and the task graph must be acyclic. Finding these at compile time saves a failed submission.

A compiled file may hold a second YAML document, a PlatformSpec, as the kfp SDK writes it (and
as `kfp.Client` reads it: the first document is the PipelineSpec, the rest the platform config):
`platforms.kubernetes.deploymentSpec.executors.<label>` is a KubernetesExecutorConfig, which the
driver parses strictly. The kfp-kubernetes proto is not installed here, so that inner struct is
checked by hand against the fields of kubernetes_executor_config.proto (kubeflow/pipelines).
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

import yaml
from google.protobuf import json_format

from kubeflow.settings import is_k8s_name
from models.errors import UserError

SCHEMA_VERSION = "2.1.0"
OPEN_SOURCE_KFP = "kfp"  # the target (one of kubeflow.settings.TARGETS) whose backend refuses more
NAME_RULE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Executor kinds the open-source Argo compiler turns down, with its own words.
OSS_REFUSED = {"resolver": "resolver executors not implemented",
               "customJob": "custom job executors is Google Cloud only, it's not supported"}


# KubernetesExecutorConfig's fields (JSON names), and those of the one message written here in full.
K8S_EXECUTOR_FIELDS = frozenset((
    "secretAsVolume", "secretAsEnv", "pvcMount", "nodeSelector", "podMetadata", "imagePullSecret",
    "imagePullPolicy", "configMapAsVolume", "configMapAsEnv", "activeDeadlineSeconds", "fieldPathAsEnv",
    "tolerations", "genericEphemeralVolume", "nodeAffinity", "podAffinity", "enabledSharedMemory",
    "emptyDirMounts"))
SECRET_AS_ENV_FIELDS = frozenset(("secretName", "keyToEnv", "optional", "secretNameParameter"))
KEY_TO_ENV_FIELDS = frozenset(("secretKey", "envVar"))
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def load_documents(path: str) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """(PipelineSpec, PlatformSpec or None) of a compiled YAML, the platform document checked."""
    try:
        with open(path, encoding="utf-8") as handle:
            documents = [doc for doc in yaml.safe_load_all(handle) if doc]
    except OSError as err:
        raise UserError(f"Cannot read the pipeline file {path}: {err.strerror or err}.") from err
    except yaml.YAMLError as err:
        raise UserError(f"The pipeline file {path} is not valid YAML: {err}.") from err
    specs = [doc for doc in documents if isinstance(doc, dict) and "pipelineInfo" in doc and "root" in doc]
    if len(specs) != 1:
        raise UserError(f"The pipeline file {path} must hold exactly one PipelineSpec document, found {len(specs)}.")
    if documents[0] is not specs[0]:
        raise UserError(f"The pipeline file {path} must start with its PipelineSpec document (the kfp client "
                        "reads the first document as the PipelineSpec).")
    rest = documents[1:]
    if len(rest) > 1 or any(not isinstance(doc, dict) or set(doc) != {"platforms"} for doc in rest):
        raise UserError(f"The pipeline file {path} may hold, after its PipelineSpec, only one platform document "
                        "(a mapping with the single key 'platforms').")
    platform = rest[0] if rest else None
    if platform is not None:
        found = platform_problems(platform, specs[0])
        if found:
            raise UserError(f"The platform document of {path} would be refused: " + "; ".join(found) + ".")
    return specs[0], platform


def load_spec_file(path: str) -> Dict[str, Any]:
    """The PipelineSpec document of a compiled YAML (a platform-spec document may follow)."""
    return load_documents(path)[0]


def load_platform_spec(path: str) -> Optional[Dict[str, Any]]:
    """The PlatformSpec document of a compiled YAML (`{"platforms": {...}}`), or None without one."""
    return load_documents(path)[1]


def parse_platform_strict(platform: Dict[str, Any]):
    """PlatformSpec proto, refusing unknown fields (kfp.Client parses the document the same way)."""
    from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=import-outside-toplevel

    return json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())


def platform_problems(platform: Dict[str, Any], spec: Dict[str, Any]) -> List[str]:
    """Every reason the backend would refuse this platform config for this PipelineSpec."""
    try:
        parse_platform_strict(platform)
    except json_format.ParseError as err:
        return [f"not a valid PlatformSpec: {err}"]
    found = []
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    for name, single in platform.get("platforms", {}).items():
        if name != "kubernetes":
            found.append(f"platform {name!r} is unknown to the open-source backend (only 'kubernetes')")
            continue
        for label, config in (single.get("deploymentSpec") or {}).get("executors", {}).items():
            if label not in executors:
                found.append(f"kubernetes config for the missing executor {label!r}")
            found.extend(f"executor {label}: {problem}" for problem in _k8s_executor_problems(config))
    return found


def _k8s_executor_problems(config: Dict[str, Any]) -> List[str]:
    """KubernetesExecutorConfig checked by hand: field names, and secretAsEnv in full."""
    found = [f"unknown KubernetesExecutorConfig field {key!r}" for key in sorted(set(config) - K8S_EXECUTOR_FIELDS)]
    for entry in config.get("secretAsEnv", []):
        if not isinstance(entry, dict):
            found.append("secretAsEnv entries must be mappings")
            continue
        found.extend(f"unknown secretAsEnv field {key!r}" for key in sorted(set(entry) - SECRET_AS_ENV_FIELDS))
        if "secretNameParameter" not in entry and not is_k8s_name(str(entry.get("secretName", ""))):
            found.append(f"secretAsEnv needs a Kubernetes secret name, not {entry.get('secretName')!r}")
        if "optional" in entry and not isinstance(entry["optional"], bool):
            found.append("secretAsEnv optional must be true or false")
        pairs = entry.get("keyToEnv")
        if not isinstance(pairs, list) or not pairs:
            found.append("secretAsEnv needs a non-empty keyToEnv list")
            continue
        for pair in pairs:
            if not isinstance(pair, dict) or set(pair) != KEY_TO_ENV_FIELDS:
                found.append(f"keyToEnv entries need exactly secretKey and envVar, not {pair!r}")
            elif not SECRET_KEY.fullmatch(str(pair["secretKey"])) or not ENV_NAME.fullmatch(str(pair["envVar"])):
                found.append(f"keyToEnv {pair!r} needs a secret key and an environment variable name")
    return found


def parse_strict(spec: Dict[str, Any]):
    """PipelineSpec proto, refusing unknown fields as the API server's protojson does."""
    from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=import-outside-toplevel

    return json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())


def deployment_config(spec_proto):
    """The executors; unknown fields are dropped, as the backend's GetDeploymentConfig does."""
    from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=import-outside-toplevel

    return json_format.ParseDict(json_format.MessageToDict(spec_proto.deployment_spec),
                                 pipeline_spec_pb2.PipelineDeploymentConfig(), ignore_unknown_fields=True)


def dags(spec_proto) -> Iterator[Tuple[str, Any]]:
    """(name, DagSpec) of the root and of every component that is itself a DAG."""
    yield "root", spec_proto.root.dag
    for name, component in spec_proto.components.items():
        if component.HasField("dag"):
            yield name, component.dag


def problems(spec: Dict[str, Any], target: str) -> List[str]:
    """Every reason the target's backend would refuse this spec; empty when it would accept it."""
    try:
        proto = parse_strict(spec)
    except json_format.ParseError as err:
        return [f"not a valid PipelineSpec: {err}"]
    found = []
    if proto.schema_version != SCHEMA_VERSION:
        found.append(f"schemaVersion is {proto.schema_version or 'missing'}, the KFP API server accepts only "
                     f"{SCHEMA_VERSION} (compile with use_pipeline_spec_2_1=True)")
    name = proto.pipeline_info.name
    if not name or not NAME_RULE.fullmatch(name):
        found.append(f"pipeline name {name!r} must be lower-case alphanumerics, '-' or '.'")
    if not proto.HasField("root") or not proto.root.dag.tasks:
        found.append("the root component has no tasks")
    executors = deployment_config(proto).executors
    root_parameters = proto.root.input_definitions.parameters
    for dag_name, dag in dags(proto):
        for task_name, task in dag.tasks.items():
            where = f"task {task_name}" + ("" if dag_name == "root" else f" of {dag_name}")
            found.extend(_task_problems(where, task, dag, proto, executors, root_parameters, target))
    if not found:
        try:
            topological_order(proto.root.dag)
        except UserError as err:
            found.append(str(err).rstrip("."))
    return found


def _task_problems(where, task, dag, proto, executors, root_parameters, target) -> List[str]:
    found = []
    open_source = target == OPEN_SOURCE_KFP
    component = proto.components.get(task.component_ref.name)
    if component is None:
        return [f"{where} refers to the missing component {task.component_ref.name!r}"]
    if task.HasField("artifact_iterator") and open_source:
        found.append(f"{where} uses an artifact iterator, which the open-source backend has not implemented")
    for upstream in task.dependent_tasks:
        if upstream not in dag.tasks:
            found.append(f"{where} depends on the missing task {upstream!r}")
    for key, spec in task.inputs.artifacts.items():
        if spec.HasField("task_output_artifact"):
            producer = spec.task_output_artifact.producer_task
            output = spec.task_output_artifact.output_artifact_key
            if producer not in dag.tasks:
                found.append(f"{where} input {key!r} comes from the missing task {producer!r}")
                continue
            outputs = proto.components[dag.tasks[producer].component_ref.name].output_definitions.artifacts
            if output not in outputs:
                found.append(f"{where} input {key!r} needs output {output!r}, which {producer} does not declare")
    for key, spec in task.inputs.parameters.items():
        if spec.component_input_parameter and spec.component_input_parameter not in root_parameters:
            found.append(f"{where} parameter {key!r} refers to the undeclared pipeline parameter "
                         f"{spec.component_input_parameter!r}")
    if component.WhichOneof("implementation") == "executor_label":
        executor = executors.get(component.executor_label)
        if executor is None:
            return found + [f"{where} has no executor {component.executor_label!r} in deploymentSpec"]
        kind = executor.WhichOneof("spec")
        if open_source and kind in OSS_REFUSED:
            found.append(f"{where} is a {kind} task, which the open-source KFP backend refuses "
                         f"(\"{OSS_REFUSED[kind]}\")")
        if kind == "importer" and task.trigger_policy.condition and open_source:
            found.append(f"{where} is an importer with a condition, which the open-source backend refuses")
        if kind == "container" and not executor.container.image:
            found.append(f"{where} has no container image")
        if kind == "container" and open_source and executor.container.lifecycle.HasField("pre_cache_check"):
            found.append(f"{where} needs its preCacheCheck driver (FileBasedExampleGen), which the open-source "
                         "backend never runs")
    return found


def raise_for_problems(spec: Dict[str, Any], target: str) -> None:
    found = problems(spec, target)
    if found:
        raise UserError(f"The compiled pipeline would be refused by the {target} backend: " + "; ".join(found) + ".")


def topological_order(dag) -> List[str]:
    """Task names with every task after those it depends on (data or explicit); ties by name."""
    upstream = {name: set(task.dependent_tasks) | {spec.task_output_artifact.producer_task
                                                  for spec in task.inputs.artifacts.values()
                                                  if spec.HasField("task_output_artifact")}
                for name, task in dag.tasks.items()}
    order, done = [], set()
    while len(order) < len(upstream):
        ready = sorted(name for name, needs in upstream.items() if name not in done and needs <= done)
        if not ready:
            stuck = sorted(set(upstream) - done)
            raise UserError(f"The tasks {', '.join(stuck)} depend on each other in a cycle.")
        order.extend(ready)
        done.update(ready)
    return order
