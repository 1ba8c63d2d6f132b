"""Container entrypoint of every task: repairs the ExecutorInput, then runs TFX 1.16's entrypoint.

Why (tensorflow/tfx#7768, open): the open-source KFP backend does not keep an artifact's schema
once stored (backend/src/v2/metadata/client.go, GetOutputArtifactsByExecutionId sets
`Schema: ""`), so every upstream artifact reaches the next task as `type: {instanceSchema: ""}`
and TFX's entrypoint crashes looking up the artifact class. The task's own input definitions,
compiled into `--json_serialized_inputs_spec_args` with schema 2.1, hold each input's type:
they are copied in. More repairs, for both targets:
- the project's custom types carry a KFP-legal title (kubeflow/artifact_types.py) that is not
  a Python path; it is replaced by the class path TFX imports;
- an artifact marked `baseline_absent` (components/baseline_resolver.py) stands for "no
  artifact", which KFP cannot express; it is removed so the component sees an empty input;
- outputs the launcher owns are hidden from TFX: from KFP 2.5 the driver adds `executor-logs`
  (`system.Artifact`, backend/src/v2/driver/driver.go provisionOutputs) to every task, the
  launcher writes and uploads it itself, and TFX would try to import `system.Artifact`;
- after the executor, a ModelBlessing's `current_model_id`/`baseline_model_id` (TFX's integer,
  a hash of the artifact's name) becomes the model's name, as TFX does for its own Evaluator
  only: Vertex's resolver looks the blessed model up by that name.

    python -m kubeflow.entrypoint --executor_class_path ... --json_serialized_invocation_args {{$}} ...
"""
from __future__ import annotations

import copy
import json
import os
import sys
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

INVOCATION_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
# Where KFP's launcher (backend/src/v2/component/launcher_v2.go, LocalPathForURI) puts artifacts.
LAUNCHER_DIRS = {"minio": "minio", "s3": "s3", "gs": "gcs"}
# The schemes staged through those paths: kubeflow.settings.STAGED_SCHEMES_ENV, compiled into kfp
# specs (minio, s3, gs). Unset (Vertex, or a spec compiled before gs:// staging): gs:// in place.
STAGED_SCHEMES_ENV = "KFP_STAGED_SCHEMES"
DEFAULT_STAGED_SCHEMES = ("minio", "s3")
LAUNCHER_ROOT_ENV = "KFP_LAUNCHER_LOCAL_ROOT"  # "/" in a pod; the harness's emulated launcher sets its own
ABSENT_PROPERTY = "baseline_absent"  # components.baseline_resolver.ABSENT_PROPERTY, without importing TFX
# Outputs the KFP launcher writes itself (driver.go provisionOutputs, KFP >= 2.5), and the type
# prefix of KFP's own artifact types, which no TFX component declares.
LAUNCHER_OUTPUTS = ("executor-logs",)
KFP_TYPE_PREFIX = "system."
# Custom properties of a ModelBlessing that hold a model's id (tfx.components.evaluator.constants).
MODEL_ID_PROPERTIES = ("current_model_id", "baseline_model_id")


def type_title(artifact_type: Optional[Dict[str, Any]]) -> Optional[str]:
    """The schema title of an ArtifactTypeSchema (JSON form), or None when it names no type."""
    artifact_type = artifact_type or {}
    if artifact_type.get("schemaTitle"):
        return artifact_type["schemaTitle"]
    schema = artifact_type.get("instanceSchema")
    if schema:
        loaded = yaml.safe_load(schema)
        if isinstance(loaded, dict) and loaded.get("title"):
            return loaded["title"]
    return None


def with_class_path(artifact_type: Dict[str, Any], class_paths: Dict[str, str]) -> Dict[str, Any]:
    """The same type, its title replaced by the class path when it is a project custom type."""
    title = type_title(artifact_type)
    if title not in class_paths:
        return artifact_type
    if artifact_type.get("schemaTitle"):
        return {**artifact_type, "schemaTitle": class_paths[title]}
    schema = yaml.safe_load(artifact_type["instanceSchema"])
    schema["title"] = class_paths[title]
    return {**artifact_type, "instanceSchema": yaml.safe_dump(schema, sort_keys=False)}


def is_absent(artifact: Dict[str, Any]) -> bool:
    value = (artifact.get("metadata") or {}).get(ABSENT_PROPERTY)
    return bool(value) and value not in ("0", "false", "False")


def repair_executor_input(executor_input: Dict[str, Any], inputs_spec: Optional[Dict[str, Any]],
                          class_paths: Dict[str, str], notes: Optional[List[str]] = None) -> Dict[str, Any]:
    """A copy of the ExecutorInput (JSON form) that TFX's entrypoint can parse; see module doc.
    What was repaired is appended to `notes`, for the task log."""
    notes = [] if notes is None else notes
    repaired = copy.deepcopy(executor_input)
    declared = (inputs_spec or {}).get("artifacts", {})
    for name, artifact_list in repaired.get("inputs", {}).get("artifacts", {}).items():
        kept: List[Dict[str, Any]] = []
        for artifact in artifact_list.get("artifacts", []):
            if is_absent(artifact):
                notes.append(f"dropped input {name} (marked {ABSENT_PROPERTY})")
                continue
            if type_title(artifact.get("type")) is None:
                if name not in declared:
                    raise ValueError(f"Input artifact {name!r} arrived without a type and the task's input "
                                     "definitions do not declare it; recompile with schema 2.1.")
                artifact["type"] = copy.deepcopy(declared[name]["artifactType"])
                notes.append(f"typed input {name} as {type_title(artifact['type'])} (tensorflow/tfx#7768)")
            artifact["type"] = with_class_path(artifact["type"], class_paths)
            kept.append(artifact)
        artifact_list["artifacts"] = kept
    outputs = repaired.get("outputs", {}).get("artifacts", {})
    for name in [name for name, artifact_list in outputs.items() if is_launcher_output(name, artifact_list)]:
        del outputs[name]
        notes.append(f"left output {name} to the launcher")
    for artifact_list in outputs.values():
        for artifact in artifact_list.get("artifacts", []):
            artifact["type"] = with_class_path(artifact.get("type") or {}, class_paths)
    return repaired


def is_launcher_output(name: str, artifact_list: Dict[str, Any]) -> bool:
    """An output the KFP launcher owns: `executor-logs`, or any of KFP's own `system.*` types."""
    titles = [type_title(artifact.get("type")) or "" for artifact in artifact_list.get("artifacts", [])]
    return name in LAUNCHER_OUTPUTS or any(title.startswith(KFP_TYPE_PREFIX) for title in titles)


def _flag_value(argv: List[str], flag: str) -> Optional[int]:
    """Index of the flag's value in argv (`--flag value` or `--flag=value` forms)."""
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return index + 1
        if arg.startswith(flag + "="):
            return index
    return None


def repair_argv(argv: List[str], class_paths: Dict[str, str], notes: Optional[List[str]] = None) -> List[str]:
    """argv with the invocation JSON replaced by its repaired form; everything else untouched."""
    argv = list(argv)
    at = _flag_value(argv, INVOCATION_FLAG)
    if at is None:
        return argv
    spec_at = _flag_value(argv, INPUTS_SPEC_FLAG)

    def value(index: int) -> str:
        return argv[index].split("=", 1)[1] if argv[index].startswith("--") else argv[index]

    inputs_spec = json.loads(value(spec_at)) if spec_at is not None else None
    repaired = json.dumps(repair_executor_input(json.loads(value(at)), inputs_spec, class_paths, notes))
    argv[at] = f"{INVOCATION_FLAG}={repaired}" if argv[at].startswith("--") else repaired
    return argv


def launcher_path(uri: str, root: str = "/", schemes: Sequence[str] = tuple(LAUNCHER_DIRS)) -> Optional[str]:
    """Where KFP's launcher keeps an artifact of one of `schemes` on the task's disk, else None."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in LAUNCHER_DIRS or scheme not in schemes:
        return None
    return os.path.join(root, LAUNCHER_DIRS[scheme], rest)


def staged_schemes(env: Optional[Dict[str, str]] = None) -> Tuple[str, ...]:
    """The URI schemes whose artifacts travel through the launcher's local paths in this task."""
    value = (os.environ if env is None else env).get(STAGED_SCHEMES_ENV)
    if value is None:
        return DEFAULT_STAGED_SCHEMES
    return tuple(part.strip() for part in value.split(",") if part.strip())


def to_launcher_paths(executor_input: Dict[str, Any], root: str = "/", notes: Optional[List[str]] = None,
                      schemes: Sequence[str] = DEFAULT_STAGED_SCHEMES) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """The ExecutorInput with object-store artifact URIs replaced by the launcher's local paths,
    and the map local path -> remote URI for the outputs. Inputs the launcher did not download
    keep their URI (minio:// read as s3://)."""
    from models import storage  # pylint: disable=import-outside-toplevel

    notes = [] if notes is None else notes
    mapped = copy.deepcopy(executor_input)
    for name, artifact_list in mapped.get("inputs", {}).get("artifacts", {}).items():
        for artifact in artifact_list.get("artifacts", []):
            local = launcher_path(artifact.get("uri", ""), root, schemes)
            if local is None:
                continue
            if os.path.exists(local):
                artifact["uri"] = local
            else:
                notes.append(f"input {name} not downloaded by the launcher; reading {artifact['uri']} directly")
                artifact["uri"] = storage.normalize(artifact["uri"])
    remote_of: Dict[str, str] = {}
    for artifact_list in mapped.get("outputs", {}).get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            local = launcher_path(artifact.get("uri", ""), root, schemes)
            if local is not None:
                os.makedirs(os.path.dirname(local), exist_ok=True)
                remote_of[local] = artifact["uri"]
                artifact["uri"] = local
    if remote_of:
        notes.append(f"{len(remote_of)} output(s) written to the launcher's local paths under {root}")
    return mapped, remote_of


def to_remote_uris(output_file: str, remote_of: Dict[str, str]) -> None:
    """Rewrites the executor's output metadata so the launcher records the remote URIs."""
    if not remote_of or not os.path.exists(output_file):
        return
    with open(output_file, encoding="utf-8") as handle:
        output = json.load(handle)
    for artifact_list in output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            artifact["uri"] = remote_of.get(artifact.get("uri"), artifact.get("uri"))
    with open(output_file, "w", encoding="utf-8") as handle:
        json.dump(output, handle)


def named_model_ids(executor_output: Dict[str, Any], executor_input: Dict[str, Any]) -> List[str]:
    """Rewrites, in place, each output's integer model-id properties to the name of the input
    artifact they stand for (TFX derives the integer from that name: kubeflow_v2_entrypoint_utils
    _get_hashed_id); returns what was renamed. An id of no input is left as it is. Compared as
    doubles: the output metadata is a protobuf Struct, whose numbers are doubles."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils  # pylint: disable=import-outside-toplevel

    name_of: Dict[float, str] = {}
    for artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            if artifact.get("name"):
                name_of[float(utils._get_hashed_id(artifact["name"], {}))] = artifact["name"]  # pylint: disable=protected-access
    renamed = []
    for artifact_list in executor_output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            metadata = artifact.get("metadata") or {}
            for key in MODEL_ID_PROPERTIES:
                value = metadata.get(key)
                if isinstance(value, (int, float)) and float(value) in name_of:
                    metadata[key] = name_of[float(value)]
                    renamed.append(f"{key} -> {metadata[key]}")
    return renamed


def rename_model_ids(output_file: str, executor_input: Dict[str, Any]) -> List[str]:
    """named_model_ids on the executor's output metadata file (local, gs:// on Vertex)."""
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    if not output_file or not fileio.exists(output_file):
        return []
    with fileio.open(output_file, "r") as handle:
        output = json.loads(handle.read())
    renamed = named_model_ids(output, executor_input)
    if renamed:
        with fileio.open(output_file, "w") as handle:
            handle.write(json.dumps(output))
    return renamed


def _artifact_uris(executor_input: Dict[str, Any]) -> List[str]:
    return [artifact.get("uri", "") for side in ("inputs", "outputs")
            for artifact_list in executor_input.get(side, {}).get("artifacts", {}).values()
            for artifact in artifact_list.get("artifacts", [])]


def _parameter_strings(executor_input: Dict[str, Any]) -> List[str]:
    values = executor_input.get("inputs", {}).get("parameterValues", {}).values()
    return [value for value in values if isinstance(value, str)]


def run(argv: List[str]) -> int:
    """Repairs the invocation, maps object-store artifacts to the launcher's paths, runs TFX's
    executor entrypoint, maps the outputs back; returns the exit code."""
    from absl import app  # pylint: disable=import-outside-toplevel
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor  # pylint: disable=import-outside-toplevel

    from kubeflow.artifact_types import class_paths_by_title  # pylint: disable=import-outside-toplevel
    from models import storage  # pylint: disable=import-outside-toplevel

    notes: List[str] = []
    fixed = [argv[0]] + repair_argv(argv[1:], class_paths_by_title(), notes)
    at = _flag_value(fixed, INVOCATION_FLAG)
    remote_of: Dict[str, str] = {}
    output_file, original_input = None, {}
    if at is not None:
        raw = fixed[at].split("=", 1)[1] if fixed[at].startswith("--") else fixed[at]
        executor_input = original_input = json.loads(raw)
        storage.enable_for(_artifact_uris(executor_input) + _parameter_strings(executor_input))
        root = os.environ.get(LAUNCHER_ROOT_ENV, "/")
        executor_input, remote_of = to_launcher_paths(executor_input, root, notes, staged_schemes())
        output_file = executor_input.get("outputs", {}).get("outputFile")
        mapped = json.dumps(executor_input)
        fixed[at] = f"{INVOCATION_FLAG}={mapped}" if fixed[at].startswith("--") else mapped
    print(f"kubeflow.entrypoint: {'; '.join(notes) if notes else 'executor input needed no repair'}",
          file=sys.stderr, flush=True)
    try:
        app.run(kubeflow_v2_run_executor.main, argv=fixed, flags_parser=kubeflow_v2_run_executor._parse_flags)  # pylint: disable=protected-access
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except Exception:  # pylint: disable=broad-except
        traceback.print_exc()
        code = 1
    if code == 0 and output_file:
        to_remote_uris(output_file, remote_of)
        renamed = rename_model_ids(output_file, original_input)
        if renamed:
            print(f"kubeflow.entrypoint: model ids named: {'; '.join(renamed)}", file=sys.stderr, flush=True)
    return code


def identity() -> str:
    """Who and what runs the tasks: `docker run IMAGE` prints this (the image's default command)."""
    from importlib import metadata  # pylint: disable=import-outside-toplevel

    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("tfx", "tensorflow", "apache-beam"))
    return (f"kubeflow.entrypoint: uid={os.getuid()} gid={os.getgid()} home={os.environ.get('HOME', '')} "
            f"python {sys.version.split()[0]}, {versions}")


def main(argv: Optional[List[str]] = None) -> None:
    from models import storage  # pylint: disable=import-outside-toplevel

    argv = list(sys.argv if argv is None else argv)
    if argv[1:] == ["--version"]:
        print(identity())
        return
    storage.exit_process(run(argv))


if __name__ == "__main__":
    main()
