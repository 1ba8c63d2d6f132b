"""The one pipeline definition compiles for both targets into specs their backends accept."""
import json
import os

import pytest
import yaml

from kubeflow import spec_check
from pipeline.kubeflow_commands import compile_config, spec_for_config
from pipeline.pipeline import BASELINE_ID, EXAMPLE_GEN_ID
from kubeflow.settings import (ENTRYPOINT, IMAGE_SCHEMA_DIR, KFP_STAGED_SCHEMES, PIPELINE_NAME_PROPERTY,
                               STAGED_SCHEMES_ENV, KubeflowSettings)
from pipeline.configs import PipelineConfig
from models.errors import UserError

IMAGE = "europe-docker.pkg.dev/proj/repo/imdb-sentiment:abc123"
SECRET = "s3cr3t-token-value"


def remote_config(**changes):
    values = dict(data_root="gs://bucket/imdb/aclImdb", serving_dir="gs://bucket/serving/imdb",
                  pipeline_root="gs://bucket/pipeline_root", beam_args=["--direct_num_workers=2"])
    values.update(changes)
    return PipelineConfig(**values)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Both targets compiled once, with credentials in the environment that must not leak."""
    out = tmp_path_factory.mktemp("compiled")
    saved = {k: os.environ.get(k) for k in ("KF_PIPELINES_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS")}
    os.environ["KF_PIPELINES_TOKEN"] = SECRET
    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = f"/secrets/{SECRET}.json"
    try:
        paths = {target: compile_config(remote_config(), KubeflowSettings(
            target=target, image=IMAGE, output=str(out / f"{target}.yaml"))) for target in ("kfp", "vertex")}
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return {target: {"path": path, "text": open(path, encoding="utf-8").read(),
                     "spec": spec_check.load_spec_file(path)} for target, path in paths.items()}


def executors(spec):
    return spec["deploymentSpec"]["executors"]


def test_both_targets_are_schema_2_1_and_parse_strictly(compiled):
    for target in ("kfp", "vertex"):
        spec = compiled[target]["spec"]
        proto = spec_check.parse_strict(spec)  # unknown fields would raise, as on the API server
        assert proto.schema_version == "2.1.0" and proto.pipeline_info.name == "imdb-sentiment"
        assert spec_check.problems(spec, target) == []


def test_the_real_kfp_client_loads_the_file(compiled):
    from kfp.client.client import _extract_pipeline_yaml

    doc = _extract_pipeline_yaml(compiled["kfp"]["path"])
    assert doc.pipeline_spec.schema_version == "2.1.0"
    assert "Evaluator" in doc.pipeline_spec.root.dag.tasks


def test_kfp_target_has_no_resolver_and_feeds_the_served_baseline_to_the_evaluator(compiled):
    spec = compiled["kfp"]["spec"]
    assert not any("resolver" in executor for executor in executors(spec).values())
    tasks = spec["root"]["dag"]["tasks"]
    baseline = tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"]
    assert baseline == {"producerTask": BASELINE_ID, "outputArtifactKey": "baseline_model"}
    assert tasks[BASELINE_ID]["inputs"]["parameters"]["serving_dir"]["runtimeValue"]["constant"] == "gs://bucket/serving/imdb"


def test_tasks_that_read_bucket_state_are_not_cached_the_rest_are(compiled):
    tasks = compiled["kfp"]["spec"]["root"]["dag"]["tasks"]
    assert "cachingOptions" not in tasks[BASELINE_ID] and "cachingOptions" not in tasks[EXAMPLE_GEN_ID]
    assert tasks["Trainer"]["cachingOptions"] == {"enableCache": True}


def test_vertex_target_keeps_the_resolver_which_oss_kfp_would_refuse(compiled):
    spec = compiled["vertex"]["spec"]
    resolvers = [name for name, executor in executors(spec).items() if "resolver" in executor]
    assert len(resolvers) == 2  # TFX splits the latest-blessed-model resolver in two queries
    found = spec_check.problems(spec, "kfp")
    assert found and all("resolver executors not implemented" in problem for problem in found)


def test_every_task_runs_the_shim_in_the_image_with_its_input_types(compiled):
    for target in ("kfp", "vertex"):
        for label, executor in executors(compiled[target]["spec"]).items():
            if "container" not in executor:
                continue
            container = executor["container"]
            assert container["image"] == IMAGE and tuple(container["command"]) == ENTRYPOINT, label
            assert "--json_serialized_inputs_spec_args" in container["args"], label
            assert "--direct_num_workers=2" in container["args"], label
            assert "lifecycle" not in container, label  # no preCacheCheck driver the OSS backend would skip


def test_spec_points_at_the_image_schema_and_object_storage_only(compiled):
    text = compiled["kfp"]["text"]
    assert f"{IMAGE_SCHEMA_DIR}/schema.pbtxt" in text
    assert "/work/" not in text and os.path.expanduser("~") + "/" not in text
    assert "_wheels" not in text and "module_file" not in text  # dotted-path functions, no wheel upload


def test_transform_and_trainer_are_sized_and_without_s3_there_is_no_env_nor_platform_document(compiled):
    for target in ("kfp", "vertex"):
        spec = compiled[target]["spec"]
        resources = {label: executor["container"].get("resources") for label, executor in executors(spec).items()
                     if "container" in executor}
        assert resources.pop("Trainer_executor") == {"cpuRequest": 2.0, "cpuLimit": 2.0,
                                                     "memoryRequest": 6 * 2**30 / 1e9, "memoryLimit": 6 * 2**30 / 1e9}
        assert resources.pop("Transform_executor")["memoryLimit"] == 4 * 2**30 / 1e9
        assert set(resources.values()) == {None}, target
        envs = [executor["container"].get("env") for executor in executors(spec).values() if "container" in executor]
        only = [{"name": STAGED_SCHEMES_ENV, "value": "minio,s3,gs"}] if target == "kfp" else None
        assert envs == [only] * len(envs), target  # kfp: the staged schemes only (next test); no S3 env
        assert spec_check.load_platform_spec(compiled[target]["path"]) is None
        assert len([doc for doc in yaml.safe_load_all(compiled[target]["text"]) if doc]) == 1


def test_custom_artifact_type_has_a_kfp_legal_title(compiled):
    outputs = compiled["kfp"]["spec"]["components"][EXAMPLE_GEN_ID]["outputDefinitions"]["artifacts"]
    assert yaml.safe_load(outputs["ingestion_report"]["artifactType"]["instanceSchema"])["title"] == "imdb.IngestionReport"


def test_no_credentials_in_the_compiled_files(compiled):
    for target in ("kfp", "vertex"):
        assert SECRET not in compiled[target]["text"]


def test_default_tfx_schema_2_0_would_be_refused_by_the_api_server(compiled):
    spec = json.loads(json.dumps(compiled["kfp"]["spec"]))
    spec["schemaVersion"] = "2.0.0"
    assert any("accepts only 2.1.0" in problem for problem in spec_check.problems(spec, "kfp"))


@pytest.mark.parametrize("mutate, fragment", [
    (lambda s: s.__setitem__("unknownField", 1), "not a valid PipelineSpec"),
    (lambda s: s["pipelineInfo"].__setitem__("name", "Bad_Name"), "lower-case"),
    (lambda s: s["root"]["dag"]["tasks"]["Pusher"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
     .__setitem__("producerTask", "Nope"), "missing task 'Nope'"),
    (lambda s: s["root"]["dag"]["tasks"]["Trainer"].__setitem__("dependentTasks", ["Pusher"]), "cycle"),
    (lambda s: s["components"]["Pusher"].__setitem__("executorLabel", "ghost"), "no executor 'ghost'"),
    (lambda s: s["deploymentSpec"]["executors"]["ImdbExampleGen_executor"]["container"].__setitem__(
        "lifecycle", {"preCacheCheck": {"command": ["python"], "args": ["{{$}}"]}}), "preCacheCheck"),
])
def test_spec_check_catches_what_the_backend_would_refuse(compiled, mutate, fragment):
    spec = json.loads(json.dumps(compiled["kfp"]["spec"]))
    mutate(spec)
    assert any(fragment in problem for problem in spec_check.problems(spec, "kfp")), spec_check.problems(spec, "kfp")


def test_harness_refuses_resolver_tasks_in_oss_mode(compiled, tmp_path):
    from testing.kfp_harness.harness import LocalKfpRun

    with pytest.raises(UserError, match="resolver executors not implemented"):
        LocalKfpRun(compiled["vertex"]["spec"], str(tmp_path), mode="oss")


def test_local_paths_are_refused_for_a_real_cluster():
    with pytest.raises(UserError, match=r"data_root \(/data/aclImdb\).*object storage"):
        spec_for_config(remote_config(data_root="/data/aclImdb"), KubeflowSettings(target="kfp", image=IMAGE))
    with pytest.raises(UserError, match="serving_dir"):
        spec_for_config(remote_config(serving_dir=None), KubeflowSettings(target="kfp", image=IMAGE))
    with pytest.raises(UserError, match=r"data_root ftp://host/imdb uses the scheme ftp://.*gs://, s3:// or minio://"):
        spec_for_config(remote_config(data_root="ftp://host/imdb"), KubeflowSettings(target="kfp", image=IMAGE))


@pytest.mark.parametrize("changes, fragment", [
    ({"target": "argo"}, "target must be one of"), ({"output": "p.json"}, "must end with .yaml"),
    ({"image": ""}, "container image reference"),
])
def test_settings_refuse_bad_values(changes, fragment):
    values = {"target": "kfp", "image": IMAGE, **changes}
    with pytest.raises(UserError, match=fragment):
        KubeflowSettings(**values)


def test_pre_cache_check_is_fine_on_vertex(compiled):
    spec = json.loads(json.dumps(compiled["vertex"]["spec"]))
    spec["deploymentSpec"]["executors"]["ImdbExampleGen_executor"]["container"]["lifecycle"] = {
        "preCacheCheck": {"command": ["python"], "args": ["{{$}}"]}}
    assert spec_check.problems(spec, "vertex") == []


def test_cli_compile_reads_the_config_file_and_flags(tmp_path, capsys):
    import argparse

    from pipeline import kubeflow_commands as cli

    config_file = tmp_path / "config.yaml"
    config_file.write_text("epochs: 3\nvocab_size: 5000\nserving_dir: gs://bucket/serving\n")
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    output = tmp_path / "out.yaml"
    args = parser.parse_args(["compile", "--target", "kfp", "--image", IMAGE, "--output", str(output),
                              "--config", str(config_file), "--data", "gs://bucket/aclImdb",
                              "--beam-arg=--runner=DataflowRunner", "--beam-arg=--project=p"])
    assert args.handler(args) == 0
    spec = spec_check.load_spec_file(str(output))
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["ImdbExampleGen"]["inputs"]["parameters"]["input_base"]["runtimeValue"]["constant"] == "gs://bucket/aclImdb"
    assert json.loads(tasks["Trainer"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])["epochs"] == 3
    assert "--runner=DataflowRunner" in spec["deploymentSpec"]["executors"]["Transform_executor"]["container"]["args"]
    assert "imdb-pipeline submit" in capsys.readouterr().out


def test_kfp_tasks_stage_gs_through_the_launcher_paths_and_vertex_tasks_do_not(compiled):
    """OSS KFP's launcher downloads gs:// inputs to /gcs/... and uploads outputs from there, so the
    shim must stage gs:// too; on Vertex it stays in place. Here without any S3 endpoint (GKE)."""
    assert (STAGED_SCHEMES_ENV, KFP_STAGED_SCHEMES) == ("KFP_STAGED_SCHEMES", ("minio", "s3", "gs"))
    kfp_containers = [e["container"] for e in executors(compiled["kfp"]["spec"]).values() if "container" in e]
    assert len(kfp_containers) == len(compiled["kfp"]["spec"]["root"]["dag"]["tasks"])
    for container in kfp_containers:
        assert {"name": "KFP_STAGED_SCHEMES", "value": "minio,s3,gs"} in container["env"]
    assert "KFP_STAGED_SCHEMES" not in compiled["vertex"]["text"]


def test_vertex_blessing_query_is_scoped_to_this_pipeline(compiled):
    """TFX's query matches any blessed ModelBlessing in the Vertex project and region; the compiler
    narrows it to the blessings BlessingGate wrote for this pipeline name."""
    spec = compiled["vertex"]["spec"]
    queries = [query["filter"] for executor in executors(spec).values()
               for query in executor.get("resolver", {}).get("outputArtifactQueries", {}).values()]
    blessing = [text for text in queries if 'schema_title="tfx.ModelBlessing"' in text]
    assert PIPELINE_NAME_PROPERTY == "pipeline_name" and len(blessing) == 1
    assert blessing[0] == ('schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1 '
                           f'AND metadata.pipeline_name.string_value="{spec["pipelineInfo"]["name"]}"')
    assert all("pipeline_name" not in text for text in queries if text not in blessing)  # the model query
    assert "pipeline_name.string_value" not in compiled["kfp"]["text"]
