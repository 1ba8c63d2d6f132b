"""Proof that the compiled spec executes: the KFP harness runs it task by task, each task in the
real image (make image) as a pod would run it.

The e2e tests share: ONE small OSS-mode run at the newest KFP release's behaviour (2.17) plus a
second, mostly cached run that exercises the served baseline; one run at the oldest release the
README supports (2.2, no emptyDirs: the task writes into the container's own filesystem); and two Vertex-mode runs, the second finding the first's model as its
baseline. See testing/kfp_harness/ for what the harness does and does not prove. The OSS runs are
a stock KFP install's: artifacts under minio:// in a real S3 server (SeaweedFS), moved by the
harness's re-enactment of the launcher, data and serving folder in the bucket, the S3 settings in
the tasks' environment only, the tasks in containers on a network that reaches only that server.
"""
import json
import os

import pytest

from corpus import write_aclimdb
from s3_server import running_s3_server
from task_image import internal_network, require_image
from testing.kfp_harness import releases
from testing.kfp_harness.harness import ArtifactRegistry, HarnessError, LocalKfpRun, _check_parameter_types

TINY = dict(vocab_size=100, oov_buckets=10, max_tokens=40, embedding_dim=16, gru_units=8, epochs=1,
            steps_per_epoch=5, batch_size=32, accuracy_threshold=0.0, auc_threshold=0.0, min_train_examples=50,
            min_eval_examples=5, canaries=[["a film", None]],  # a barely trained model: only robustness canaries
            canary_max_seconds=30.0)
RESOLVER = "latest_blessed_model_resolver"
# The two filters TFX 1.16 compiles the latest-blessed-model resolver into (step_builder.py).
BLESSING_FILTER = 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
MODEL_FILTER = 'schema_title="tfx.Model" AND state=LIVE AND name="{}"'


def compile_for_harness(tmp, target, data_root=None, serving_dir=None, image="local-harness", **settings_given):
    """The real compile for a target; local paths stand in for the buckets unless given. For the
    image, the schema is the image's copy at the path the spec names by default."""
    from pipeline.kubeflow_commands import compile_config
    from kubeflow.settings import IMAGE_SCHEMA_DIR, KubeflowSettings
    from kubeflow import spec_check
    from pipeline.configs import SCHEMA_DIR, PipelineConfig

    data = data_root or str(write_aclimdb(tmp / "data", n_train=300, n_test=40))
    config = PipelineConfig(data_root=data, workdir=str(tmp / "work"), serving_dir=serving_dir or str(tmp / "serving"),
                            input_fingerprint="corpus-seed-0", **TINY)
    settings = KubeflowSettings(target=target, image=image, output=str(tmp / f"{target}.yaml"),
                                schema_dir=SCHEMA_DIR if image == "local-harness" else IMAGE_SCHEMA_DIR,
                                require_object_storage=False, **settings_given)
    spec, platform = spec_check.load_documents(compile_config(config, settings))
    return (spec, config, platform) if settings_given else (spec, config)


BUCKET = "mlpipeline"  # a stock install's bucket


@pytest.fixture(scope="session")
def pod_network(tmp_path_factory):
    """The task image, an internal Docker network, and a SeaweedFS listening on its gateway only."""
    image = require_image()
    with internal_network() as (network, gateway):
        with running_s3_server(str(tmp_path_factory.mktemp("seaweedfs-pods")), host=gateway) as server:
            server.create_bucket(BUCKET)
            yield {"image": image, "network": network, "s3": server}


def kfp_run_in_image(pod_network, tmp, release, runs=1, root_scheme="minio", stop_after=()):
    """`runs` runs of the compiled kfp spec on one root, every task in the image at `release`."""
    s3 = pod_network["s3"]
    s3.upload_tree(str(write_aclimdb(tmp / "data", n_train=300, n_test=40)), BUCKET, f"{tmp.name}/data/aclImdb")
    # The tasks reach the bucket only through the compiled file: its endpoint env and the secret it maps.
    spec, config, platform = compile_for_harness(tmp, "kfp", data_root=f"s3://{BUCKET}/{tmp.name}/data/aclImdb",
                                                 serving_dir=f"minio://{BUCKET}/{tmp.name}/serving",
                                                 image=pod_network["image"], s3_endpoint=s3.endpoint)
    launcher_env = {**os.environ, **s3.env()}  # the launcher's own access (kfp-launcher config)
    secrets = {"mlpipeline-minio-artifact": {"accesskey": s3.access_key, "secretkey": s3.secret_key}}
    done, versions = [], []
    for _ in range(runs):
        run = LocalKfpRun(spec, f"{root_scheme}://{BUCKET}/{tmp.name}/v2/artifacts", mode="oss", env=launcher_env,
                          state_dir=str(tmp / "state"), platform=platform, secrets=secrets, release=release,
                          image=pod_network["image"], network=pod_network["network"])
        run.run(stop_after=stop_after)
        done.append(run)
        versions.append(served_versions(s3, f"{tmp.name}/serving/"))
    return {"runs": done, "versions": versions, "config": config, "s3": s3, "prefix": tmp.name}


@pytest.fixture(scope="session")
def oss_runs(tmp_path_factory, pod_network):
    """At the newest release: run 1 on an empty serving folder, then run 2 on the same root, as a schedule does."""
    result = kfp_run_in_image(pod_network, tmp_path_factory.mktemp("newest"), releases.NEWEST, runs=2)
    return {"first": result["runs"][0], "second": result["runs"][1], "config": result["config"],
            "versions_after_first": result["versions"][0], "s3": result["s3"], "prefix": result["prefix"]}


@pytest.mark.e2e
def test_a_gs_root_on_kfp_travels_through_the_gcs_paths_and_never_in_place(tmp_path_factory, pod_network):
    """KFP on GKE with a gs:// root (kubeflow/pipelines#13476): the launcher moves gs:// artifacts
    through /gcs/...; the shim must hand the executor those paths (KFP_STAGED_SCHEMES in the kfp
    spec) so that nothing writes gs:// in place. The pods reach no GCS, so any in-place access
    would fail; the keys live in the S3 server, standing for the bucket."""
    result = kfp_run_in_image(pod_network, tmp_path_factory.mktemp("gsroot"), releases.NEWEST, root_scheme="gs",
                              stop_after="Transform")
    run = result["runs"][0]
    graph = run.results["Transform"].outputs["transform_graph"][0]
    assert graph["uri"].startswith(f"gs://{BUCKET}/{result['prefix']}/v2/artifacts/")
    keys = result["s3"].keys(BUCKET, f"{result['prefix']}/v2/artifacts/")
    assert any(key.endswith("/transform_graph/transform_fn/saved_model.pb") for key in keys)
    assert not [key for key in keys if key.endswith("/")]  # no marker for #13476 to trip on
    log = log_text(run, "Transform")
    assert "launcher: downloaded input examples" in log and "not downloaded by the launcher" not in log


@pytest.fixture(scope="session")
def oldest_run(tmp_path_factory, pod_network):
    return kfp_run_in_image(pod_network, tmp_path_factory.mktemp("oldest"), releases.OLDEST_SUPPORTED)


def served_versions(server, prefix):
    return sorted({key[len(prefix):].split("/")[0] for key in server.keys(BUCKET, prefix)})


def read_object(server, uri):
    from models.storage import bucket_and_key

    bucket, key = bucket_and_key(uri)
    return server.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def metadata(run, task, output):
    return run.results[task].outputs[output][0]["metadata"]


def log_text(run, task):
    with open(run.results[task].log, encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.e2e
def test_oss_run_executes_every_task_to_a_pushed_servable_model(oss_runs, monkeypatch):
    """In the image, at KFP 2.17's behaviour (executor-logs, output metadata in the task root, ...)."""
    from models import storage
    from pipeline.predict import Predictor, newest_model_dir

    first = oss_runs["first"]
    assert {name: result.how for name, result in first.results.items()} == {name: "executed" for name in (
        "ImdbExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataValidationGate",
        "Transform", "Trainer", "LatestServedModel", "Evaluator", "BlessingGate", "ServingCanary", "Pusher")}
    assert metadata(first, "BlessingGate", "blessing")["blessed"] == 1
    assert metadata(first, "ServingCanary", "blessing")["blessed"] == 1
    pushed = metadata(first, "Pusher", "pushed_model")
    assert pushed["pushed"] == 1 and len(oss_runs["versions_after_first"]) == 1
    for key, value in oss_runs["s3"].env().items():
        monkeypatch.setenv(key, value)
    storage.enable_s3()
    predictor = Predictor(newest_model_dir(oss_runs["config"].resolved_serving_dir))
    scores = predictor.predict(["A wonderful, touching film.", "Boring and awful, a waste."])
    assert all(0.0 <= probability <= 1.0 for probability, _ in scores)


@pytest.mark.e2e
def test_oss_inputs_arrived_untyped_and_the_shim_typed_them(oss_runs):
    first = oss_runs["first"]
    assert "typed input examples as tfx.Examples (tensorflow/tfx#7768)" in log_text(first, "StatisticsGen")
    evaluator_log = log_text(first, "Evaluator")
    assert "typed input model as tfx.Model" in evaluator_log
    assert all(artifact["name"].isdigit()  # OSS names artifacts by their metadata id
               for outputs in first.results["ImdbExampleGen"].outputs.values() for artifact in outputs)


@pytest.mark.e2e
def test_artifacts_travel_through_the_launcher_and_are_recorded_as_minio_uris(oss_runs):
    first, s3 = oss_runs["first"], oss_runs["s3"]
    model = first.results["Trainer"].outputs["model"][0]
    assert model["uri"].startswith(f"minio://{BUCKET}/{oss_runs['prefix']}/v2/artifacts/")
    keys = s3.keys(BUCKET, f"{oss_runs['prefix']}/v2/artifacts/")
    prefix = model["uri"].split("://", 1)[1].split("/", 1)[1]
    assert f"{prefix}/Format-Serving/saved_model.pb" in keys  # uploaded by the launcher after the task
    trainer_log = log_text(first, "Trainer")
    assert "launcher: downloaded input examples" in trainer_log
    assert "output(s) written to the launcher's local paths" in trainer_log
    assert "launcher: uploaded output model" in trainer_log
    assert not [key for key, size in keys.items() if key.endswith("/") and size == 0]  # nothing for #13476


@pytest.mark.e2e
def test_first_run_has_no_baseline_so_only_the_absolute_threshold_applies(oss_runs):
    first = oss_runs["first"]
    assert metadata(first, "LatestServedModel", "baseline_model")["baseline_absent"] == 1
    assert "dropped input baseline_model (marked baseline_absent)" in log_text(first, "Evaluator")
    assert "baseline_model" not in metadata(first, "Evaluator", "blessing")


@pytest.mark.e2e
def test_second_run_blesses_against_the_served_model_and_pushes_nothing_new(oss_runs):
    first, second = oss_runs["first"], oss_runs["second"]
    how = {name: result.how for name, result in second.results.items()}
    reads_the_bucket = ("LatestServedModel", "DataValidationGate", "BlessingGate")  # uncached on purpose
    assert how == {**{name: "cached" for name in how}, **{name: "executed" for name in reads_the_bucket},
                   "Evaluator": "executed", "ServingCanary": "executed", "Pusher": "executed"}
    baseline = second.results["LatestServedModel"].outputs["baseline_model"][0]
    assert baseline["metadata"]["served_version"] == oss_runs["versions_after_first"][0]
    assert "typed input baseline_model as tfx.Model" in log_text(second, "Evaluator")
    gate = second.results["BlessingGate"].outputs["blessing"][0]
    assert gate["metadata"]["blessed"] == 1  # the same model: no worse than the served one by more than the margin
    rules = json.loads(read_object(oss_runs["s3"], gate["uri"] + "/blessing_rules.json"))
    ratchet = [rule for rule in rules if rule["kind"] == "ratchet" and rule["metric"] == "accuracy"]
    assert ratchet[0]["passed"] and "measured today on this eval split" in ratchet[0]["sentence"]
    served = oss_runs["s3"].keys(BUCKET, f"{oss_runs['prefix']}/serving/{oss_runs['versions_after_first'][0]}/")
    assert any(key.endswith("assets.extra/blessing_metrics.json") for key in served)  # the next bar
    assert any(key.endswith("assets.extra/train_statistics.pb") for key in served)    # the next drift reference
    assert metadata(second, "Pusher", "pushed_model")["already_serving"] == 1
    assert served_versions(oss_runs["s3"], f"{oss_runs['prefix']}/serving/") == oss_runs["versions_after_first"]
    assert second.results["Trainer"].outputs == first.results["Trainer"].outputs  # served from the cache


@pytest.mark.e2e
def test_oldest_supported_release_runs_the_whole_pipeline_in_the_image(oldest_run):
    """KFP 2.2: no emptyDir (the launcher writes into the container's own /minio, which the image
    made the task user's), no executor-logs output, output metadata in /tmp/kfp_outputs, unnamed
    outputs, only the first artifact of a list moved: the same image and spec push a model."""
    run = oldest_run["runs"][0]
    assert all(result.how == "executed" for result in run.results.values())
    assert metadata(run, "Pusher", "pushed_model")["pushed"] == 1 and len(oldest_run["versions"][0]) == 1
    assert all(releases.EXECUTOR_LOGS not in result.outputs for result in run.results.values())
    assert "left output executor-logs" not in log_text(run, "Trainer")


@pytest.mark.e2e
def test_newest_release_adds_executor_logs_which_the_launcher_writes_and_uploads(oss_runs):
    first, s3 = oss_runs["first"], oss_runs["s3"]
    assert "left output executor-logs to the launcher" in log_text(first, "Trainer")
    logs = first.results["Trainer"].outputs[releases.EXECUTOR_LOGS][0]
    assert logs["uri"].endswith("/executor-logs-0")  # 2.16.1's retry suffix
    assert b"kubeflow.entrypoint:" in read_object(s3, logs["uri"])


def _unit_run(tmp_path, release, image=None, network=None):
    spec, _, platform = compile_for_harness(tmp_path, "kfp", data_root="s3://b/data", serving_dir="s3://b/serving",
                                            s3_endpoint="http://127.0.0.1:9")
    secrets = {"mlpipeline-minio-artifact": {"accesskey": "k", "secretkey": "s"}}
    return LocalKfpRun(spec, "minio://mlpipeline/v2/artifacts", env={"PATH": os.environ["PATH"]},
                       state_dir=str(tmp_path / "state"), platform=platform, secrets=secrets, release=release,
                       image=image, network=network)


def _executor_input(run, task_name):
    from testing.kfp_harness.pods import VenvPod

    task = run.spec.root.dag.tasks[task_name]
    pod = VenvPod(task_name, "python")
    try:
        return run._executor_input(task_name, task, run.spec.components[task.component_ref.name], pod), pod
    finally:
        pod.remove()


@pytest.mark.parametrize("release, output_file_under, logs_uri_end, named", [
    ("2.3", "/tmp/kfp_outputs/output_metadata.json", None, False),
    ("2.5", "/tmp/kfp_outputs/output_metadata.json", "/executor-logs", False),
    ("2.14", "/tmp/kfp_outputs/output_metadata.json", "/executor-logs", False),
    ("2.15", "/minio/mlpipeline/v2/artifacts/imdb-sentiment/", "/executor-logs", True),
    ("2.17", "/minio/mlpipeline/v2/artifacts/imdb-sentiment/", "/executor-logs-0", True),
])
def test_executor_input_follows_the_release(tmp_path, release, output_file_under, logs_uri_end, named):
    executor_input, pod = _executor_input(_unit_run(tmp_path, release), "ImportSchemaGen")
    outputs = executor_input["outputs"]
    assert outputs["outputFile"].startswith(pod.root + output_file_under)
    if output_file_under.startswith("/minio"):  # 2.15: beside the outputs, in the task root's local path
        assert outputs["outputFile"].rsplit("/", 2)[0].endswith("/ImportSchemaGen")
    logs = outputs["artifacts"].get(releases.EXECUTOR_LOGS)
    if logs_uri_end is None:
        assert logs is None
    else:
        assert logs["artifacts"][0]["uri"].endswith(logs_uri_end)
        assert logs["artifacts"][0]["type"] == {"schemaTitle": "system.Artifact"}
    assert (outputs["artifacts"]["schema"]["artifacts"][0]["name"] == "schema") is named


@pytest.mark.parametrize("release, downloaded", [("2.5", ["a"]), ("2.14", ["a", "b"])])
def test_every_artifact_of_an_input_list_is_downloaded_from_2_14(tmp_path, s3_server, release, downloaded):
    from testing.kfp_harness.harness import _S3Store
    from testing.kfp_harness.pods import VenvPod

    bucket = s3_server.create_bucket(f"lists-{release.replace('.', '-')}")
    for name in ("a", "b"):
        s3_server.client().put_object(Bucket=bucket, Key=f"run/{name}/file.txt", Body=name.encode())
    run = _unit_run(tmp_path, release)
    run.s3 = _S3Store(s3_server.env())
    executor_input = {"inputs": {"artifacts": {"examples": {"artifacts": [
        {"uri": f"minio://{bucket}/run/{name}"} for name in ("a", "b")]}}}}
    pod = VenvPod("T", "python")
    try:
        run._download_inputs("T", executor_input, pod, str(tmp_path / "log"))
        assert sorted(os.listdir(pod.host_path(f"/minio/{bucket}/run"))) == downloaded
    finally:
        pod.remove()


def test_every_release_flag_is_on_from_its_release_onwards():
    versions = list(releases.RELEASES)
    for field in [f for f in releases.KfpRelease.__dataclass_fields__ if f != "version"]:
        on = [getattr(releases.get(version), field) for version in versions]
        assert on == sorted(on), f"{field} switches off again in a later release"
        assert any(on), field
    assert releases.get(releases.NEWEST) == releases.RELEASES[versions[-1]]
    with pytest.raises(ValueError, match="knows 2.2, 2.3"):
        releases.get("2.9")


def test_a_container_pod_is_what_kfp_makes_of_the_task(tmp_path):
    from testing.kfp_harness.pods import ContainerPod

    pod = ContainerPod("Trainer", "img:tag", releases.get("2.17"), "net", cpu_limit=1.5, memory_limit_gb=4.0)
    try:
        argv = pod.docker_argv(["python", "-m", "kubeflow.entrypoint", "--x"], {"S3_ENDPOINT": "http://h:1"})
        joined = " ".join(argv)
        assert argv[:4] == ["docker", "run", "--rm", "--read-only"] and "--user 1000 " in joined
        for path in ("/minio", "/s3", "/gcs", "/tmp", "/home/pipeline", "/.cache"):
            assert f"{pod.host_path(path)}:{path}" in argv
            assert os.stat(pod.host_path(path)).st_uid == 1000
        assert argv[argv.index("--cpus") + 1] == "1.5" and argv[argv.index("--memory") + 1] == "4000000000b"
        assert [a for a in argv if a.startswith("S3_") or "=" in a and a.split("=")[0].isupper()] == [
            "S3_ENDPOINT=http://h:1"]  # only what the pod is given
        assert argv[-4:] == ["img:tag", "-m", "kubeflow.entrypoint", "--x"]
        assert argv[argv.index("--entrypoint") + 1] == "python"
    finally:
        pod.remove()
    old = ContainerPod("T", "img", releases.get("2.2"), "net")  # no emptyDir: the container's own filesystem
    try:
        argv = old.docker_argv(["python", "-m", "kubeflow.entrypoint"], {})
        assert argv[:2] == ["docker", "create"] and "--read-only" not in argv and "--volume" not in argv
    finally:
        old.remove()


def test_in_the_image_a_task_gets_only_the_compiled_environment(tmp_path):
    run = _unit_run(tmp_path, "2.17", image="img", network="net")
    component = run.spec.components[run.spec.root.dag.tasks["Trainer"].component_ref.name]
    env = run._task_env(component.executor_label, run.executors[component.executor_label].container)
    assert "PATH" not in env and env["S3_ENDPOINT"] == "http://127.0.0.1:9" and env["AWS_ACCESS_KEY_ID"] == "k"
    assert env["KFP_STAGED_SCHEMES"] == "minio,s3,gs" and "KFP_POD_NAME" in env


@pytest.mark.e2e
def test_a_task_meets_kfp_2_17s_executor_input_in_the_venv(tmp_path, s3_server):
    """The shim with executor-logs and the output metadata in the task root: exit 0, metadata written."""
    spec, _, platform = compile_for_harness(tmp_path, "kfp", data_root="s3://unit/data", serving_dir="s3://unit/serving",
                                            s3_endpoint=s3_server.endpoint)
    s3_server.create_bucket("unit")
    secrets = {"mlpipeline-minio-artifact": {"accesskey": s3_server.access_key, "secretkey": s3_server.secret_key}}
    run = LocalKfpRun(spec, "minio://unit/v2/artifacts", env={**os.environ, **s3_server.env()},
                      state_dir=str(tmp_path / "state"), platform=platform, secrets=secrets, release="2.17")
    result = run.run(stop_after="ImportSchemaGen")["ImportSchemaGen"]
    assert result.outputs["schema"][0]["uri"].startswith("minio://unit/v2/artifacts/")
    assert "left output executor-logs to the launcher" in log_text(run, "ImportSchemaGen")
    keys = s3_server.keys("unit", "v2/artifacts/")
    assert any(key.endswith("/schema/schema.pbtxt") for key in keys), keys

def test_registry_answers_the_resolver_filters_tfx_compiles(tmp_path):
    registry = ArtifactRegistry(str(tmp_path), "vertex")
    old = registry.record({"uri": "/m1", "metadata": {}}, "tfx.Model")
    new = registry.record({"uri": "/m2", "metadata": {}}, "tfx.Model")
    registry.record({"uri": "/b1", "metadata": {"blessed": 1.0, "current_model_id": old["name"]}}, "tfx.ModelBlessing")
    registry.record({"uri": "/b2", "metadata": {"blessed": 0.0, "current_model_id": new["name"]}}, "tfx.ModelBlessing")
    blessing = registry.latest(BLESSING_FILTER)
    assert blessing["uri"] == "/b1"
    assert registry.latest(MODEL_FILTER.format(blessing["metadata"]["current_model_id"]))["uri"] == "/m1"
    assert ArtifactRegistry(str(tmp_path), "vertex").latest(BLESSING_FILTER)["uri"] == "/b1"  # persisted
    with pytest.raises(HarnessError, match="cannot evaluate"):
        registry.latest("create_time > 5")


def test_parameters_are_checked_against_declared_types_as_the_driver_does():
    from kfp.pipeline_spec import pipeline_spec_pb2

    declared = pipeline_spec_pb2.ComponentInputsSpec()
    declared.parameters["eval_percent"].parameter_type = pipeline_spec_pb2.ParameterType.NUMBER_INTEGER
    declared.parameters["input_base"].parameter_type = pipeline_spec_pb2.ParameterType.STRING
    _check_parameter_types("T", {"eval_percent": 10.0, "input_base": "gs://b"}, declared.parameters)
    with pytest.raises(HarnessError, match="should be STRING"):
        _check_parameter_types("T", {"eval_percent": 10, "input_base": 3}, declared.parameters)
    with pytest.raises(HarnessError, match="no value for its parameter input_base"):
        _check_parameter_types("T", {"eval_percent": 10}, declared.parameters)


def test_a_task_sees_the_compiled_s3_settings_not_the_callers(tmp_path):
    """What the pod gets: the container env and the mapped secret; the caller's own S3 variables
    are dropped, so a spec missing them fails in the harness as it would on a cluster."""
    spec, _, platform = compile_for_harness(tmp_path, "kfp", data_root="s3://b/data", serving_dir="s3://b/serving",
                                            s3_endpoint="http://minio-service.kubeflow:9000")
    caller = {"PATH": "/usr/bin", "S3_ENDPOINT": "http://caller:1", "AWS_ACCESS_KEY_ID": "caller-key",
              "AWS_SECRET_ACCESS_KEY": "caller-secret"}
    run = LocalKfpRun(spec, str(tmp_path / "root"), env=caller, platform=platform,
                      secrets={"mlpipeline-minio-artifact": {"accesskey": "pod-key", "secretkey": "pod-secret"}})
    component = run.spec.components[run.spec.root.dag.tasks["Trainer"].component_ref.name]
    env = run._task_env(component.executor_label, run.executors[component.executor_label].container)
    assert (env["S3_ENDPOINT"], env["S3_USE_HTTPS"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        "http://minio-service.kubeflow:9000", "0", "pod-key", "pod-secret")
    assert env["PATH"] == "/usr/bin"
    without = LocalKfpRun(spec, str(tmp_path / "root"), env=caller, platform=platform)
    with pytest.raises(HarnessError, match="maps the Kubernetes secret 'mlpipeline-minio-artifact'"):
        without._task_env(component.executor_label, without.executors[component.executor_label].container)
