"""The entrypoint shim turns what the OSS KFP backend sends into what TFX 1.16 can parse."""
import copy
import json

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
    assert launcher_path("gs://b/k") is None and launcher_path("/local/path") is None
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
