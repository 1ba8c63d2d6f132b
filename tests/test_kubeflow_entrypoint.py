"""The entrypoint shim turns what the OSS KFP backend sends into what TFX 1.16 can parse."""
import copy
import json
import os

import pytest

from kubeflow import entrypoint

EXAMPLES_SCHEMA = ("title: tfx.Examples\ntype: object\nproperties:\n  span:\n    type: integer\n"
                   "  version:\n    type: integer\n  split_names:\n    type: string\n")
INPUTS_SPEC = {"artifacts": {"examples": {"artifactType": {"instanceSchema": EXAMPLES_SCHEMA}},
                             "baseline_model": {"artifactType": {"instanceSchema": "title: tfx.Model\ntype: object\n"}}},
               "parameters": {"exclude_splits": {"parameterType": "STRING"}}}
CLASS_PATHS = {"imdb.IngestionReport": "components.artifacts.IngestionReport"}


def oss_executor_input(examples_type=None):
    """As the OSS driver builds it: upstream artifacts named by MLMD id, their schema lost."""
    examples = {"name": "42", "uri": "/root/ImdbExampleGen/examples",
                "metadata": {"split_names": "[\"train\", \"eval\"]", "span": 0.0, "display_name": "examples"}}
    if examples_type is not None:
        examples["type"] = examples_type
    return {"inputs": {"parameterValues": {"exclude_splits": "[]"},
                       "artifacts": {"examples": {"artifacts": [examples]}}},
            "outputs": {"artifacts": {"report": {"artifacts": [{
                "name": "report", "uri": "/root/t/report",
                "type": {"instanceSchema": "title: imdb.IngestionReport\ntype: object\n"}}]}},
                "outputFile": "/tmp/out/output_metadata.json"}}


def parse_with_tfx(executor_input):
    """What TFX 1.16's container entrypoint does with the inputs."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

    message = pipeline_spec_pb2.ExecutorInput()
    json_format.Parse(json.dumps(executor_input), message, ignore_unknown_fields=True)
    return (kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(message.inputs.artifacts),
            kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(message.outputs.artifacts))


def test_stock_tfx_entrypoint_crashes_on_the_empty_instance_schema_oss_sends():
    """tensorflow/tfx#7768 as it happens: yaml.safe_load('') is None, then None.get('title')."""
    with pytest.raises(AttributeError):
        parse_with_tfx(oss_executor_input({"instanceSchema": ""}))


@pytest.mark.parametrize("oss_type", [{"instanceSchema": ""}, None, {}])
def test_repaired_input_parses_to_the_declared_type_with_its_properties(oss_type):
    from tfx.types import standard_artifacts

    repaired = entrypoint.repair_executor_input(oss_executor_input(oss_type), INPUTS_SPEC, CLASS_PATHS)
    inputs, _ = parse_with_tfx(repaired)
    examples = inputs["examples"][0]
    assert isinstance(examples, standard_artifacts.Examples)
    assert examples.split_names == "[\"train\", \"eval\"]" and examples.uri == "/root/ImdbExampleGen/examples"


def test_an_input_that_kept_its_type_is_left_alone():
    typed = {"schemaTitle": "tfx.Examples"}
    repaired = entrypoint.repair_executor_input(oss_executor_input(typed), INPUTS_SPEC, CLASS_PATHS)
    assert repaired["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"] == typed


def test_project_custom_type_title_becomes_an_importable_class_path():
    from components.artifacts import IngestionReport

    repaired = entrypoint.repair_executor_input(oss_executor_input({"instanceSchema": ""}), INPUTS_SPEC, CLASS_PATHS)
    _, outputs = parse_with_tfx(repaired)
    assert isinstance(outputs["report"][0], IngestionReport)


def test_real_title_table_covers_the_project_types():
    from kubeflow.artifact_types import class_paths_by_title

    assert class_paths_by_title()["imdb.IngestionReport"] == "components.artifacts.IngestionReport"


def test_absent_baseline_is_dropped_so_the_evaluator_sees_no_baseline():
    executor_input = oss_executor_input({"instanceSchema": ""})
    executor_input["inputs"]["artifacts"]["baseline_model"] = {"artifacts": [{
        "name": "7", "uri": "/root/b", "type": {"instanceSchema": ""}, "metadata": {"baseline_absent": 1.0}}]}
    repaired = entrypoint.repair_executor_input(executor_input, INPUTS_SPEC, CLASS_PATHS)
    inputs, _ = parse_with_tfx(repaired)
    assert inputs["baseline_model"] == [] and len(inputs["examples"]) == 1


def test_absent_marker_matches_the_component_constant():
    from components.baseline_resolver import ABSENT_PROPERTY

    assert entrypoint.ABSENT_PROPERTY == ABSENT_PROPERTY


def test_untyped_input_missing_from_the_inputs_spec_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="recompile with schema 2.1"):
        entrypoint.repair_executor_input(oss_executor_input({"instanceSchema": ""}), {"artifacts": {}}, CLASS_PATHS)


@pytest.mark.parametrize("joined", [False, True])
def test_repair_argv_rewrites_only_the_invocation_json(joined):
    original = oss_executor_input({"instanceSchema": ""})
    flag = entrypoint.INVOCATION_FLAG
    invocation = [f"{flag}={json.dumps(original)}"] if joined else [flag, json.dumps(original)]
    argv = ["--executor_class_path", "x.Executor", *invocation, entrypoint.INPUTS_SPEC_FLAG, json.dumps(INPUTS_SPEC),
            "--runner=DirectRunner"]
    argv_before = list(argv)
    fixed = entrypoint.repair_argv(argv, CLASS_PATHS)
    # Written out by hand: the untyped input gets the type its inputs spec declares, the project's
    # custom output type gets its class path as title; everything else is as sent.
    expected = copy.deepcopy(original)
    expected["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"] = {"instanceSchema": EXAMPLES_SCHEMA}
    expected["outputs"]["artifacts"]["report"]["artifacts"][0]["type"] = {
        "instanceSchema": "title: components.artifacts.IngestionReport\ntype: object\n"}
    at = 2 if joined else 3  # where the invocation JSON sits in argv
    assert len(fixed) == len(argv_before)
    assert fixed[:at] == argv_before[:at] and fixed[at + 1:] == argv_before[at + 1:]
    prefix = f"{flag}=" if joined else ""
    assert fixed[at].startswith(prefix) and json.loads(fixed[at][len(prefix):]) == expected
    assert argv == argv_before  # the caller's argv is not modified


def test_repair_does_not_mutate_its_argument():
    original = oss_executor_input({"instanceSchema": ""})
    before = copy.deepcopy(original)
    entrypoint.repair_executor_input(original, INPUTS_SPEC, CLASS_PATHS)
    assert original == before


# -- object storage: the launcher's local paths (kubeflow/entrypoint.py) ------------------------------
def _invocation(input_uri, output_uri, output_file):
    return {"inputs": {"artifacts": {"examples": {"artifacts": [{"name": "7", "uri": input_uri}]}}},
            "outputs": {"artifacts": {"model": {"artifacts": [{"name": "model", "uri": output_uri}]}},
                        "outputFile": output_file}}


def test_object_store_artifacts_are_read_and_written_at_the_launchers_local_paths(tmp_path):
    from kubeflow.entrypoint import launcher_path, to_launcher_paths, to_remote_uris

    assert launcher_path("minio://mlpipeline/v2/a/examples") == "/minio/mlpipeline/v2/a/examples"
    assert launcher_path("s3://b/k", str(tmp_path)) == str(tmp_path / "s3" / "b" / "k")
    assert launcher_path("gs://b/k") == "/gcs/b/k" and launcher_path("/local/path") is None
    assert launcher_path("gs://b/k", schemes=entrypoint.DEFAULT_STAGED_SCHEMES) is None  # Vertex: in place
    (tmp_path / "minio" / "mlpipeline" / "run" / "examples").mkdir(parents=True)  # downloaded by the launcher
    given = _invocation("minio://mlpipeline/run/examples", "minio://mlpipeline/run/model",
                        str(tmp_path / "tmp" / "output_metadata.json"))
    notes = []
    mapped, remote_of = to_launcher_paths(given, str(tmp_path), notes)
    local_model = str(tmp_path / "minio" / "mlpipeline" / "run" / "model")
    assert mapped["inputs"]["artifacts"]["examples"]["artifacts"][0]["uri"] == str(
        tmp_path / "minio" / "mlpipeline" / "run" / "examples")
    assert mapped["outputs"]["artifacts"]["model"]["artifacts"][0]["uri"] == local_model
    assert remote_of == {local_model: "minio://mlpipeline/run/model"}
    assert given["outputs"]["artifacts"]["model"]["artifacts"][0]["uri"] == "minio://mlpipeline/run/model"  # a copy
    # the executor writes its output metadata with the local URI; the launcher must record the remote one
    output_file = tmp_path / "tmp" / "output_metadata.json"
    output_file.parent.mkdir(parents=True)
    output_file.write_text(json.dumps({"artifacts": {"model": {"artifacts": [
        {"uri": local_model, "metadata": {"model_type": "serving"}}]}}}))
    to_remote_uris(str(output_file), remote_of)
    written = json.loads(output_file.read_text())["artifacts"]["model"]["artifacts"][0]
    assert written == {"uri": "minio://mlpipeline/run/model", "metadata": {"model_type": "serving"}}


def test_an_input_the_launcher_did_not_download_is_read_from_the_bucket(tmp_path):
    from kubeflow.entrypoint import to_launcher_paths

    notes = []
    mapped, _ = to_launcher_paths(_invocation("minio://b/run/examples", "gs://g/run/model", "/tmp/x.json"),
                                  str(tmp_path), notes)
    assert mapped["inputs"]["artifacts"]["examples"]["artifacts"][0]["uri"] == "s3://b/run/examples"
    assert mapped["outputs"]["artifacts"]["model"]["artifacts"][0]["uri"] == "gs://g/run/model"  # left alone
    assert notes == ["input examples not downloaded by the launcher; reading minio://b/run/examples directly"]


# -- KFP >= 2.5: executor-logs, an output the launcher owns ------------------------------------------
def with_executor_logs(executor_input, uri="minio://mlpipeline/v2/artifacts/p/r/T/s/executor-logs-0"):
    """What the KFP >= 2.5 driver adds to every task when publishLogs is on (driver.go provisionOutputs)."""
    given = copy.deepcopy(executor_input)
    given["outputs"]["artifacts"]["executor-logs"] = {"artifacts": [
        {"name": "executor-logs", "uri": uri, "type": {"schemaTitle": "system.Artifact"}}]}
    return given


def test_stock_tfx_cannot_parse_the_executor_logs_output_kfp_2_5_adds():
    """What the shim did before: inputs repaired, outputs passed through, `ImportError` on every task."""
    typed_inputs = entrypoint.repair_executor_input(oss_executor_input(), INPUTS_SPEC, CLASS_PATHS)
    with pytest.raises(ImportError, match="system.Artifact"):
        parse_with_tfx(with_executor_logs(typed_inputs))


def test_executor_logs_is_left_to_the_launcher_and_the_rest_parses():
    notes = []
    repaired = entrypoint.repair_executor_input(with_executor_logs(oss_executor_input({"instanceSchema": ""})),
                                                INPUTS_SPEC, CLASS_PATHS, notes)
    _, outputs = parse_with_tfx(repaired)
    assert set(outputs) == {"report"}
    assert "left output executor-logs to the launcher" in notes


def test_any_kfp_system_typed_output_is_the_launchers():
    given = oss_executor_input()
    given["outputs"]["artifacts"]["metrics"] = {"artifacts": [{"name": "metrics", "uri": "/x",
                                                               "type": {"schemaTitle": "system.Metrics"}}]}
    assert set(entrypoint.repair_executor_input(given, INPUTS_SPEC, CLASS_PATHS)["outputs"]["artifacts"]) == {"report"}


@pytest.mark.parametrize("value, expected", [(None, ("minio", "s3")), ("minio,s3,gs", ("minio", "s3", "gs")),
                                             ("", ())])
def test_staged_schemes_come_from_the_compiled_env(value, expected):
    env = {} if value is None else {entrypoint.STAGED_SCHEMES_ENV: value}
    assert entrypoint.staged_schemes(env) == expected


def test_gs_artifacts_travel_through_the_gcs_paths_when_the_kfp_spec_says_so(tmp_path):
    """KFP's launcher downloads gs:// inputs to /gcs/... (kubeflow/pipelines#13476 comes from
    writing gs:// in place instead): on the kfp target the shim stages them like s3://."""
    (tmp_path / "gcs" / "b" / "run" / "examples").mkdir(parents=True)
    given = _invocation("gs://b/run/examples", "gs://b/run/model", str(tmp_path / "out.json"))
    mapped, remote_of = entrypoint.to_launcher_paths(given, str(tmp_path), [], ("minio", "s3", "gs"))
    assert mapped["inputs"]["artifacts"]["examples"]["artifacts"][0]["uri"] == str(tmp_path / "gcs/b/run/examples")
    assert remote_of == {str(tmp_path / "gcs/b/run/model"): "gs://b/run/model"}


# -- model ids as names (Vertex's resolver looks the blessed model up by name) ----------------------
def test_blessing_model_ids_become_the_input_models_names():
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils

    name = "projects/p/locations/l/metadataStores/default/artifacts/123"
    executor_input = {"inputs": {"artifacts": {"model": {"artifacts": [{"name": name, "uri": "/m"}]}}}}
    model_id = utils._get_hashed_id(name, {})  # what TFX hands the executor as model.id
    output = {"artifacts": {"blessing": {"artifacts": [{"uri": "/b", "metadata": {
        "blessed": 1.0, "current_model_id": float(model_id), "other": 5.0}}]}}}
    assert entrypoint.named_model_ids(output, executor_input) == [f"current_model_id -> {name}"]
    assert output["artifacts"]["blessing"]["artifacts"][0]["metadata"] == {
        "blessed": 1.0, "current_model_id": name, "other": 5.0}
    assert entrypoint.named_model_ids({"artifacts": {"b": {"artifacts": [{"metadata": {"current_model_id": 9.0}}]}}},
                                      executor_input) == []  # not an input's id: left alone


def test_image_default_command_prints_who_runs_the_tasks(capsys):
    entrypoint.main(["entrypoint", "--version"])
    line = capsys.readouterr().out
    assert f"uid={os.getuid()}" in line and "tfx 1.16.0" in line
