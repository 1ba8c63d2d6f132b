"""Executes a compiled KFP spec on this machine, task by task, as the KFP driver and launcher of
one KFP release would (releases.py: what differs from 2.2 to 2.17).

What it does: checks the spec as the backend does (kubeflow/spec_check.py), then runs each task
in topological order as a subprocess with the task's own command and args, after building its
ExecutorInput the way the KFP driver does: `{{$}}` replaced by the ExecutorInput JSON, output
URIs `<root>/<pipeline>/<run>/<task>/<salt>/<output>`, an output metadata file the executor
writes and the launcher merges (URI, metadata) into the produced artifacts, which then flow to
their consumers. Two modes:
  oss     as the open-source backend: upstream artifacts arrive named by their metadata id and
          typed `{instanceSchema: ""}` (tensorflow/tfx#7768); resolver tasks and tasks needing
          a `lifecycle.preCacheCheck` driver are refused (the backend would not run them).
  vertex  as Vertex AI: artifacts keep their types and resource names, preCacheCheck runs
          before the executor, and resolver tasks are answered from the artifacts of earlier
          harness runs under the same root (filters of the form `a="b" AND c=d`).

Tasks with `cachingOptions.enableCache` are served from earlier runs under the same root when
their cache key matches (input artifact names, parameter values, output types, image, command
and args: the fields of KFP's cache key), as the backend does.

Object storage: with an s3:// or minio:// pipeline root (a real S3 server; endpoint and keys
from the standard environment, models/storage.py) the harness is also KFP's launcher: before a
task it lists each input artifact by prefix and downloads it under a fresh local folder standing
for the pod's disk (`<pod>/minio/<bucket>/<key>`, a zero-byte `dir/` object becoming a file named
`dir`, as the launcher's download does, which then fails on the files under it:
kubeflow/pipelines#13476), after the task it uploads each output's local folder to its URI, and
it records the artifacts with their minio:// URIs. The pod folder is deleted after each task.
The registry and cache (ML Metadata's part) then live in a local `state_dir`.

Where the task runs (pods.py): this machine's Python, or, given an `image`, that image under
`docker run` as a pod runs it (uid 1000, read-only root, the release's emptyDirs, only the
compiled environment, the compiled CPU/memory limits, a network reaching only the S3 server).

What it does not prove: there is no Argo, no Kubernetes, no ML Metadata server and no real
launcher or driver binary (their steps are re-enacted here from the backend source). A spec that
runs here can still fail on a cluster for those reasons; see kubeflow/README.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, Iterable, List, Optional

from google.protobuf import json_format

from kubeflow import spec_check
from kubeflow.entrypoint import launcher_path, type_title
from models import storage
from models.errors import UserError
from testing.kfp_harness import releases
from testing.kfp_harness.pods import ContainerPod, VenvPod

MODES = ("oss", "vertex")
VERTEX_NAME = "projects/local/locations/local/metadataStores/default/artifacts/{}"
# What a pod's S3 access is made of; a spec that sets any of it replaces the caller's.
S3_VARIABLES = ("S3_ENDPOINT", "S3_USE_HTTPS", "S3_VERIFY_SSL", "AWS_REGION", "AWS_DEFAULT_REGION",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
REGISTRY_FILE = "_harness_artifacts.json"  # what resolver queries see, across runs under one root
CACHE_FILE = "_harness_cache.json"          # cache key -> outputs of the execution that made them
_PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")


class HarnessError(Exception):
    """A task failed, or the spec asks for something the backend would not do."""


@dataclasses.dataclass
class TaskResult:
    name: str
    seconds: float
    outputs: Dict[str, List[Dict[str, Any]]]   # output key -> RuntimeArtifacts (JSON form)
    log: Optional[str] = None
    how: str = "executed"                       # or "cached", or "resolved" (a resolver task)


class ArtifactRegistry:
    """The artifacts every run under one root produced: ids, names, and what resolvers query."""

    def __init__(self, root: str, mode: str):
        self.path = os.path.join(root, REGISTRY_FILE)
        self.mode = mode
        self.rows: List[Dict[str, Any]] = _read_json(self.path, [])

    def record(self, artifact: Dict[str, Any], title: Optional[str]) -> Dict[str, Any]:
        artifact_id = len(self.rows) + 1
        name = str(artifact_id) if self.mode == "oss" else VERTEX_NAME.format(artifact_id)
        stored = {**artifact, "name": name}
        self.rows.append({"id": artifact_id, "title": title, "artifact": stored})
        _write_json(self.path, self.rows)
        return stored

    def latest(self, query: str) -> Optional[Dict[str, Any]]:
        """The newest artifact matching an ML Metadata filter made of `key=value` terms joined by AND."""
        terms = [term.strip() for term in query.split(" AND ")]
        for row in reversed(self.rows):
            if all(self._matches(row, term) for term in terms):
                return row["artifact"]
        return None

    @staticmethod
    def _matches(row: Dict[str, Any], term: str) -> bool:
        key, _, wanted = term.partition("=")
        wanted = wanted.strip().strip('"')
        metadata = row["artifact"].get("metadata") or {}
        if key == "schema_title":
            return row["title"] == wanted
        if key == "state":
            return wanted == "LIVE"
        if key == "name":
            return row["artifact"]["name"] == wanted
        match = re.fullmatch(r"metadata\.(\w+)\.(number_value|string_value)", key)
        if match:
            value = metadata.get(match.group(1))
            if value is None:
                return False
            return float(value) == float(wanted) if match.group(2) == "number_value" else str(value) == wanted
        raise HarnessError(f"The harness cannot evaluate the resolver filter term {term!r}.")


class LocalKfpRun:
    """One run of a compiled spec; `run()` executes it and returns each task's result."""

    def __init__(self, spec: Dict[str, Any], pipeline_root: str, mode: str = "oss",
                 parameters: Optional[Dict[str, Any]] = None, run_id: Optional[str] = None,
                 python: str = sys.executable, env: Optional[Dict[str, str]] = None,
                 state_dir: Optional[str] = None, platform: Optional[Dict[str, Any]] = None,
                 secrets: Optional[Dict[str, Dict[str, str]]] = None, release: str = releases.NEWEST,
                 image: Optional[str] = None, network: Optional[str] = None):
        if mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
        spec_check.raise_for_problems(spec, "kfp" if mode == "oss" else "vertex")
        self.spec = spec_check.parse_strict(spec)
        self.executors = spec_check.deployment_config(self.spec).executors
        self.mode, self.python = mode, python
        self.release = releases.get(release)
        self.image, self.network = image, network
        self.env = dict(os.environ if env is None else env)
        self.k8s_executors = k8s_executors(platform)
        self.secrets = secrets or {}
        # A gs:// root stands for KFP on GKE: no GCS here (TensorFlow 2.16's GCS filesystem has its
        # endpoint built in, so no emulator can stand in), so its keys live in the S3 server and only
        # the launcher (this harness) touches them; the task sees /gcs/... paths, never gs://.
        self.bucket_root = storage.is_s3(pipeline_root) or storage.scheme_of(pipeline_root) == "gs"
        if self.bucket_root:
            if mode != "oss":
                raise UserError("An object-store pipeline root needs mode oss (Vertex keeps artifacts on gs://).")
            if not state_dir:
                raise UserError("A pipeline root on S3 needs a local state_dir for the harness's registry and cache.")
            self.pipeline_root = pipeline_root.rstrip("/")
            self.s3 = _S3Store(self.env)
        else:
            self.pipeline_root = os.path.abspath(pipeline_root)
        if image and not (self.bucket_root and network):
            raise UserError("Tasks in the image need an s3:// or minio:// pipeline root and a Docker network that "
                            "reaches the S3 server: a container sees no folder of this machine.")
        self.state_dir = os.path.abspath(state_dir or self.pipeline_root)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.run_root = "/".join((self.pipeline_root, self.spec.pipeline_info.name, self.run_id))
        self.log_root = os.path.join(self.state_dir, self.spec.pipeline_info.name, self.run_id, "logs")
        self.parameters = self._root_parameters(parameters or {})
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, self.env.get("PYTHONPATH")) if p)
        os.makedirs(self.state_dir, exist_ok=True)
        self.registry = ArtifactRegistry(self.state_dir, mode)
        self.cache = _read_json(os.path.join(self.state_dir, CACHE_FILE), {})
        self.results: Dict[str, TaskResult] = {}
        self.parameter_outputs: Dict[str, Dict[str, Any]] = {}

    # -- the run -------------------------------------------------------------------------------
    def run(self, stop_after: Iterable[str] = (), log: Any = None) -> Dict[str, TaskResult]:
        """Runs every task, or only the `stop_after` tasks and what they need."""
        order = spec_check.topological_order(self.spec.root.dag)
        if isinstance(stop_after, str):
            stop_after = [stop_after]
        if stop_after:
            needed = set().union(*(self._needed_for(name) for name in stop_after))
            order = [name for name in order if name in needed]
        if not self.bucket_root:
            os.makedirs(self.run_root, exist_ok=True)
        for name in order:
            started = time.time()
            if log:
                print(f"[harness {self.mode}] {name} ...", file=log, flush=True)
            self.results[name] = self._run_task(name, self.spec.root.dag.tasks[name])
            self.results[name].seconds = round(time.time() - started, 1)
            if log:
                print(f"[harness {self.mode}] {name} done in {self.results[name].seconds}s", file=log, flush=True)
        return self.results

    def _needed_for(self, target: str) -> set:
        tasks, needed, todo = self.spec.root.dag.tasks, set(), [target]
        if target not in tasks:
            raise UserError(f"There is no task {target!r} in the pipeline.")
        while todo:
            name = todo.pop()
            if name in needed:
                continue
            needed.add(name)
            task = tasks[name]
            todo.extend(task.dependent_tasks)
            todo.extend(spec.task_output_artifact.producer_task for spec in task.inputs.artifacts.values()
                        if spec.HasField("task_output_artifact"))
        return needed

    def _run_task(self, name: str, task) -> TaskResult:
        component = self.spec.components[task.component_ref.name]
        executor = self.executors[component.executor_label]
        kind = executor.WhichOneof("spec")
        if kind == "resolver":
            return self._resolve(name, task, executor.resolver)
        if kind != "container":
            raise HarnessError(f"Task {name} is a {kind} task, which the harness does not execute.")
        pod = self._pod(name, executor.container) if self.bucket_root else None
        try:
            executor_input = self._executor_input(name, task, component, pod)
            key = _cache_key(executor_input, executor.container) if task.caching_options.enable_cache else None
            if key and key in self.cache:
                self.parameter_outputs[name] = self.cache[key]["parameters"]
                return TaskResult(name=name, seconds=0.0, outputs=self.cache[key]["outputs"], how="cached")
            if not pod:
                os.makedirs(os.path.dirname(executor_input["outputs"]["outputFile"]), exist_ok=True)
            log_path = os.path.join(self.log_root, f"{name}.log")
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            if pod:
                self._download_inputs(name, executor_input, pod, log_path)
                pod.hand_over()
            container = executor.container
            if self.mode == "vertex" and container.lifecycle.HasField("pre_cache_check"):
                hook = container.lifecycle.pre_cache_check
                self._execute(name + " (preCacheCheck)", list(hook.command), list(hook.args), executor_input,
                              log_path)
            self._execute(name, list(container.command), list(container.args), executor_input, log_path, pod,
                          self._task_env(component.executor_label, container))
            written = self._written(executor_input, pod)
            if pod:
                self._upload_outputs(executor_input, written, pod, log_path)
            outputs = self._collect_outputs(name, component, executor_input, pod, written)
            if key:
                self.cache[key] = {"outputs": outputs, "parameters": self.parameter_outputs[name]}
                _write_json(os.path.join(self.state_dir, CACHE_FILE), self.cache)
            return TaskResult(name=name, seconds=0.0, outputs=outputs, log=log_path)
        finally:
            if pod:
                pod.remove()

    def _pod(self, name: str, container):
        if not self.image:
            return VenvPod(name, self.python)
        resources = container.resources
        return ContainerPod(name, self.image, self.release, self.network,
                            cpu_limit=resources.cpu_limit, memory_limit_gb=resources.memory_limit)

    # -- the launcher's object-store steps (bucket roots only) ----------------------------------------
    def _download_inputs(self, name: str, executor_input: Dict[str, Any], pod, log_path: str) -> None:
        """As the launcher: each input artifact (the first of a list before 2.14), listed by prefix,
        to its local path on the pod's disk."""
        lines = []
        for key, artifact_list in executor_input["inputs"]["artifacts"].items():
            artifacts = artifact_list.get("artifacts", [])
            for artifact in artifacts if self.release.all_input_artifacts else artifacts[:1]:
                local = launcher_path(artifact["uri"])
                if local is None:
                    continue
                try:
                    count = self.s3.download(artifact["uri"], pod.host_path(local),
                                             skip_siblings=self.release.download_skips_siblings)
                except OSError as error:
                    raise HarnessError(f"Task {name}: the launcher could not download input {key} from "
                                       f"{artifact['uri']}: {error} (a zero-byte 'dir/' object becomes a file; "
                                       "kubeflow/pipelines#13476)") from error
                lines.append(f"launcher: downloaded input {key}: {count} object(s) from {artifact['uri']}")
        _append(log_path, lines)

    def _upload_outputs(self, executor_input: Dict[str, Any], written: Dict[str, Any], pod, log_path: str) -> None:
        """As the launcher: each output (the first of a list before 2.5) at the URI the executor's
        output metadata gives, else the provisioned one, uploaded from its local path; a missing
        local path is only a warning."""
        lines = []
        for key, artifact_list in executor_input["outputs"]["artifacts"].items():
            artifacts = artifact_list["artifacts"] if self.release.all_output_artifacts else artifact_list["artifacts"][:1]
            for index, artifact in enumerate(artifacts):
                uri = self._merged(key, index, artifact, written).get("uri", "")
                local = launcher_path(uri)
                if local is None:
                    continue
                if not os.path.exists(pod.host_path(local)):
                    lines.append(f"launcher: output {key} has no local files at {local}; nothing uploaded")
                    continue
                lines.append(f"launcher: uploaded output {key}: {self.s3.upload(pod.host_path(local), uri)} "
                             f"file(s) to {uri}")
        _append(log_path, lines)

    def _merged(self, key: str, index: int, artifact: Dict[str, Any], written: Dict[str, Any]) -> Dict[str, Any]:
        """The provisioned artifact with the executor's entry merged in (URI, metadata), as the
        launcher does; from 2.16.1 an entry for executor-logs is ignored."""
        if key == releases.EXECUTOR_LOGS and self.release.executor_logs_retry_suffix:
            return {**artifact, "metadata": dict(artifact.get("metadata", {}))}
        entries = written.get("artifacts", {}).get(key, {}).get("artifacts") or []
        update = entries[index] if index < len(entries) else {}
        merged = dict(artifact)
        if update.get("uri"):
            merged["uri"] = update["uri"]
        merged["metadata"] = {**artifact.get("metadata", {}), **update.get("metadata", {})}
        return merged

    # -- ExecutorInput as the driver builds it -----------------------------------------------------
    def _root_parameters(self, given: Dict[str, Any]) -> Dict[str, Any]:
        declared = self.spec.root.input_definitions.parameters
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise UserError(f"The pipeline has no parameters {', '.join(unknown)}.")
        values = {}
        for name, spec in declared.items():
            if name in given:
                values[name] = given[name]
            elif spec.HasField("default_value"):
                values[name] = json_format.MessageToDict(spec.default_value)
            elif not spec.is_optional:
                raise UserError(f"The pipeline parameter {name} needs a value.")
        return values

    def _executor_input(self, name: str, task, component, pod=None) -> Dict[str, Any]:
        task_root = "/".join((self.run_root, name, uuid.uuid4().hex[:8]))
        # On a cluster the output metadata file is on the pod's disk, not in the bucket: from 2.15
        # in the task root's local path (the /minio emptyDir), before in /tmp/kfp_outputs/.
        if pod is None:
            output_file = os.path.join(task_root, "output_metadata.json")
        elif self.release.output_file_in_task_root:
            output_file = pod.task_path(posixpath.join(launcher_path(task_root), "output_metadata.json"))
        else:
            output_file = pod.task_path(releases.LEGACY_OUTPUT_FILE)
        parameters = {}
        for key, spec in task.inputs.parameters.items():
            if spec.HasField("runtime_value"):
                parameters[key] = json_format.MessageToDict(spec.runtime_value.constant)
            elif spec.component_input_parameter:
                parameters[key] = self.parameters[spec.component_input_parameter]
            elif spec.HasField("task_output_parameter"):
                producer = spec.task_output_parameter.producer_task
                parameters[key] = self.parameter_outputs[producer][spec.task_output_parameter.output_parameter_key]
            else:
                raise HarnessError(f"Task {name} parameter {key} has a kind of input the harness does not build.")
        _check_parameter_types(name, parameters, component.input_definitions.parameters)
        artifacts = {}
        for key, spec in task.inputs.artifacts.items():
            source = spec.task_output_artifact
            produced = self.results[source.producer_task].outputs.get(source.output_artifact_key, [])
            artifacts[key] = {"artifacts": [self._as_input(artifact) for artifact in produced]}
        outputs = {}
        for key, definition in component.output_definitions.artifacts.items():
            outputs[key] = {"artifacts": [{
                "name": key if self.release.output_artifact_names or self.mode == "vertex" else "",
                "uri": "/".join((task_root, key)),
                "type": json_format.MessageToDict(definition.artifact_type),
                "metadata": json_format.MessageToDict(definition.metadata),
            }]}
        if self.mode == "oss" and self.release.executor_logs:
            suffix = "-0" if self.release.executor_logs_retry_suffix else ""
            outputs[releases.EXECUTOR_LOGS] = {"artifacts": [{
                "name": releases.EXECUTOR_LOGS if self.release.output_artifact_names else "",
                "uri": f"{task_root}/{releases.EXECUTOR_LOGS}{suffix}", "type": {"schemaTitle": "system.Artifact"}}]}
        return {"inputs": {"parameterValues": parameters, "artifacts": artifacts},
                "outputs": {"artifacts": outputs, "outputFile": output_file}}

    def _as_input(self, artifact: Dict[str, Any]) -> Dict[str, Any]:
        """A produced artifact as a consumer receives it: on OSS without its schema (#7768)."""
        given = dict(artifact)
        if self.mode == "oss":
            given["type"] = {"instanceSchema": ""}
        return given

    # -- running and collecting ------------------------------------------------------------------
    def _task_env(self, label: str, container) -> Dict[str, str]:
        """The environment the task's pod would have: the container's `env` and the secrets the
        platform spec maps (secretAsEnv). When the spec brings S3 settings, the caller's own are
        removed, so the task works only if the compiled file is right."""
        declared = {item.name: item.value for item in container.env}
        mapped = self.k8s_executors.get(label, {}).get("secretAsEnv", [])
        # In the image, nothing of this machine's environment: the pod's own variables only.
        env = {"KFP_POD_NAME": f"{label}-pod", "KFP_POD_UID": str(uuid.uuid4())} if self.image else dict(self.env)
        if declared or mapped:
            for key in S3_VARIABLES:
                env.pop(key, None)
        env.update(declared)
        for reference in mapped:
            name = reference.get("secretName") or reference.get("secretNameParameter", {}).get("runtimeValue", {}) \
                .get("constant")
            if name not in self.secrets:
                raise HarnessError(f"The spec maps the Kubernetes secret {name!r} into task {label}; give the "
                                   "harness its keys (secrets={name: {key: value}}).")
            for pair in reference.get("keyToEnv", []):
                env[pair["envVar"]] = self.secrets[name][pair["secretKey"]]
        return env

    def _execute(self, name: str, command: List[str], args: List[str], executor_input: Dict[str, Any],
                 log_path: str, pod=None, env: Optional[Dict[str, str]] = None) -> None:
        payload = json.dumps(executor_input)
        argv = list(command)
        for arg in args:
            if arg == "{{$}}":
                argv.append(payload)
            elif _PLACEHOLDER.search(arg):
                raise HarnessError(f"Task {name} uses the placeholder {arg!r}, which the harness does not fill.")
            else:
                argv.append(arg)
        env = dict(self.env if env is None else env)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(argv[:3])} ... ({len(argv)} args){' in ' + self.image if self.image else ''}\n")
            log.flush()
            if pod is None:
                argv[0] = self.python if argv[0] in ("python", "python3") else argv[0]
                code = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, check=False,
                                      cwd=os.path.dirname(executor_input["outputs"]["outputFile"])).returncode
            else:
                code = pod.run(argv, env, log, cwd=pod.root)
        if pod is not None:
            self._write_executor_logs(executor_input, log_path, pod)
        if code != 0:
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                tail = "".join(handle.readlines()[-25:])
            raise HarnessError(f"Task {name} exited with {code}; log {log_path}:\n{tail}")

    def _write_executor_logs(self, executor_input: Dict[str, Any], log_path: str, pod) -> None:
        """From 2.5 the launcher tees the task's output into executor-logs' local path (then uploads it)."""
        logs = executor_input["outputs"]["artifacts"].get(releases.EXECUTOR_LOGS)
        if logs:
            local = pod.host_path(launcher_path(logs["artifacts"][0]["uri"]))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            shutil.copyfile(log_path, local)

    def _written(self, executor_input: Dict[str, Any], pod=None) -> Dict[str, Any]:
        """The executor's output metadata (ExecutorOutput, JSON form); empty when it wrote none."""
        from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=import-outside-toplevel

        output_file = executor_input["outputs"]["outputFile"]
        output_file = pod.host_of_task_path(output_file) if pod else output_file
        if not os.path.exists(output_file):
            return {}
        with open(output_file, encoding="utf-8") as handle:
            return json_format.MessageToDict(json_format.Parse(handle.read(), pipeline_spec_pb2.ExecutorOutput()))

    def _collect_outputs(self, name: str, component, executor_input: Dict[str, Any],
                         pod=None, written: Optional[Dict[str, Any]] = None) -> Dict[str, List[Dict[str, Any]]]:
        """Merges the executor's output metadata into the outputs, as the launcher does, and records them."""
        written = self._written(executor_input, pod) if written is None else written
        self.parameter_outputs[name] = written.get("parameterValues", {})
        outputs = {}
        for key, artifact_list in executor_input["outputs"]["artifacts"].items():
            artifact = self._merged(key, 0, artifact_list["artifacts"][0], written)
            if self.mode == "oss" and self.release.session_info:  # what the launcher adds when it records it
                artifact["metadata"].setdefault("display_name", key)
                artifact["metadata"].setdefault("store_session_info", "{}")
            title = type_title(artifact["type"])
            outputs[key] = [self.registry.record(artifact, title)]
        return outputs

    def _resolve(self, name: str, task, resolver) -> TaskResult:
        """Vertex answers resolver tasks from its metadata store; here, from earlier harness runs."""
        if self.mode == "oss":
            raise HarnessError(f"Task {name} is a resolver, which the open-source KFP backend refuses.")
        inputs = {}
        for key, spec in task.inputs.artifacts.items():
            source = spec.task_output_artifact
            inputs[key] = self.results[source.producer_task].outputs.get(source.output_artifact_key, [])
        outputs = {}
        for key, query in resolver.output_artifact_queries.items():
            text = query.filter
            for match in re.finditer(r"\{\{\$\.inputs\.artifacts\['(\w+)'\]\.metadata\['(\w+)'\]\}\}", query.filter):
                upstream = inputs.get(match.group(1)) or []
                if not upstream:  # nothing upstream: the query cannot match anything
                    text = None
                    break
                text = text.replace(match.group(0), str(upstream[0].get("metadata", {}).get(match.group(2), "")))
            found = self.registry.latest(text) if text else None
            outputs[key] = [found] if found else []
        return TaskResult(name=name, seconds=0.0, outputs=outputs, how="resolved")


class _S3Store:
    """The launcher's object-store client: boto3 with the standard S3 environment."""

    def __init__(self, env: Dict[str, str]):
        self.client = storage.s3_client(env)

    def download(self, uri: str, local: str, skip_siblings: bool = True) -> int:
        """Every object whose key starts with the URI's key, to `local`, placed as the launcher's
        DownloadBlob places it: filepath.Join(local, filepath.Rel(key, object key)). So a `dir/`
        marker becomes a file `dir`, and before 2.17 a sibling sharing the prefix (`model_run`
        beside `model`) lands beside `local`; 2.17 skips it."""
        bucket, key = storage.bucket_and_key(uri)
        count = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                if skip_siblings and not (item["Key"] == key or item["Key"].startswith(key.rstrip("/") + "/")):
                    continue
                path = os.path.normpath(os.path.join(local, posixpath.relpath(item["Key"], key)))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self.client.download_file(bucket, item["Key"], path)
                count += 1
        return count

    def upload(self, local: str, uri: str) -> int:
        """A folder's files under the URI's key; a file (executor-logs) as the object itself."""
        bucket, key = storage.bucket_and_key(uri)
        if os.path.isfile(local):
            self.client.upload_file(local, bucket, key)
            return 1
        count = 0
        for root, _, files in os.walk(local):
            for file_name in files:
                path = os.path.join(root, file_name)
                relative = os.path.relpath(path, local).replace(os.sep, "/")
                self.client.upload_file(path, bucket, f"{key}/{relative}")
                count += 1
        return count


def k8s_executors(platform: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """{executor label: KubernetesExecutorConfig} of a PlatformSpec document (empty without one)."""
    return ((platform or {}).get("platforms", {}).get("kubernetes", {})
            .get("deploymentSpec", {}).get("executors", {}))


def _append(path: str, lines: List[str]) -> None:
    if lines:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


def _cache_key(executor_input: Dict[str, Any], container) -> str:
    """The fields KFP's cache key is made of (backend/src/v2/cacheutils/cache.go)."""
    material = {
        "inputArtifactNames": {key: [artifact["name"] for artifact in artifacts["artifacts"]]
                               for key, artifacts in executor_input["inputs"]["artifacts"].items()},
        "inputParameterValues": executor_input["inputs"]["parameterValues"],
        "outputArtifactsSpec": {key: {field: artifacts["artifacts"][0].get(field) for field in ("name", "type", "metadata")}
                                for key, artifacts in executor_input["outputs"]["artifacts"].items()},
        "image": container.image, "cmdArgs": list(container.command) + list(container.args),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _read_json(path: str, default: Any) -> Any:
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _write_json(path: str, value: Any) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(value, handle)
    os.replace(path + ".tmp", path)


_PARAMETER_KINDS = {"STRING": (str,), "NUMBER_INTEGER": (int, float), "NUMBER_DOUBLE": (int, float),
                    "BOOLEAN": (bool,), "LIST": (list,), "STRUCT": (dict,)}


def _check_parameter_types(task: str, values: Dict[str, Any], declared) -> None:
    """The driver refuses a parameter whose value does not fit its declared type."""
    from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=import-outside-toplevel

    for key, spec in declared.items():
        type_name = pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name(spec.parameter_type)
        if key not in values:
            if not (spec.is_optional or spec.HasField("default_value")):
                raise HarnessError(f"Task {task} gets no value for its parameter {key}.")
            continue
        kinds = _PARAMETER_KINDS.get(type_name)
        if kinds and not isinstance(values[key], kinds) or (type_name == "NUMBER_INTEGER" and isinstance(values[key], float)
                                                          and not values[key].is_integer()):
            raise HarnessError(f"Task {task} parameter {key} should be {type_name}, got {values[key]!r}.")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="compiled pipeline YAML")
    parser.add_argument("--pipeline-root", required=True,
                        help="local folder, or s3:// / minio:// with S3_ENDPOINT and keys in the environment")
    parser.add_argument("--state-dir", help="local folder for the harness's artifact registry and cache "
                                            "(needed with an object-store root)")
    parser.add_argument("--mode", choices=MODES, default="oss")
    parser.add_argument("--release", choices=list(releases.RELEASES), default=releases.NEWEST,
                        help="the KFP backend release whose driver and launcher to re-enact")
    parser.add_argument("--image", help="run each task in this image (docker), as a pod would; needs --network")
    parser.add_argument("--network", help="Docker network of the task containers (one that reaches the S3 server)")
    parser.add_argument("--stop-after", action="append", default=[], help="run only this task and what it needs "
                                                                         "(repeatable)")
    args = parser.parse_args(argv)
    try:
        spec, platform = spec_check.load_documents(args.spec)
        # A mapped secret stands for the keys of this shell (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
        secrets = {reference.get("secretName"): {pair["secretKey"]: os.environ.get(pair["envVar"], "")
                                                 for pair in reference.get("keyToEnv", [])}
                   for executor in k8s_executors(platform).values()
                   for reference in executor.get("secretAsEnv", [])}
        run = LocalKfpRun(spec, args.pipeline_root, mode=args.mode, state_dir=args.state_dir, platform=platform,
                          secrets=secrets, release=args.release, image=args.image, network=args.network)
        run.run(stop_after=args.stop_after, log=sys.stdout)
    except (UserError, HarnessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"All tasks succeeded; outputs under {run.run_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
