"""Proof that the compiled spec executes: the local KFP harness runs it task by task.

The e2e tests share ONE small OSS-mode run (plus a second, mostly cached run that exercises the
served baseline) and a whole Vertex-mode run; see kubeflow/local_harness.py for what the
harness does and does not prove. The OSS runs are a stock KFP install's: artifacts under
minio:// in a real S3 server (SeaweedFS), moved by the harness's re-enactment of the launcher,
data and serving folder in the bucket, the S3 settings in the tasks' environment only.
"""
import json
import os

import pytest

from kubeflow.local_harness import ArtifactRegistry, HarnessError, _check_parameter_types
from corpus import write_aclimdb

TINY = dict(vocab_size=100, oov_buckets=10, max_tokens=40, embedding_dim=16, gru_units=8, epochs=1,
            steps_per_epoch=5, batch_size=32, accuracy_threshold=0.0, auc_threshold=0.0, min_train_examples=50,
            min_eval_examples=5, canaries=[["a film", None]],  # a barely trained model: only robustness canaries
            canary_max_seconds=30.0)
RESOLVER = "latest_blessed_model_resolver"
# The two filters TFX 1.16 compiles the latest-blessed-model resolver into (step_builder.py).
BLESSING_FILTER = 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
MODEL_FILTER = 'schema_title="tfx.Model" AND state=LIVE AND name="{}"'


def compile_for_harness(tmp, target, data_root=None, serving_dir=None, **settings_given):
    """The real compile for a target; local paths stand in for the buckets unless given."""
    from pipeline.kubeflow_commands import compile_config
    from kubeflow.settings import KubeflowSettings
    from kubeflow import spec_check
    from pipeline.configs import SCHEMA_DIR, PipelineConfig

    data = data_root or str(write_aclimdb(tmp / "data", n_train=300, n_test=40))
    config = PipelineConfig(data_root=data, workdir=str(tmp / "work"), serving_dir=serving_dir or str(tmp / "serving"),
                            input_fingerprint="corpus-seed-0", **TINY)
    settings = KubeflowSettings(target=target, image="local-harness", output=str(tmp / f"{target}.yaml"),
                                schema_dir=SCHEMA_DIR, require_object_storage=False, **settings_given)
    spec, platform = spec_check.load_documents(compile_config(config, settings))
    return (spec, config, platform) if settings_given else (spec, config)


BUCKET = "mlpipeline"  # a stock install's bucket


@pytest.fixture(scope="session")
def oss_runs(tmp_path_factory, s3_server):
    """Run 1 on an empty serving folder, then run 2 on the same root: what a schedule does."""
    from kubeflow.local_harness import LocalKfpRun

    tmp = tmp_path_factory.mktemp("harness-oss")
    s3_server.create_bucket(BUCKET)
    s3_server.upload_tree(str(write_aclimdb(tmp / "data", n_train=300, n_test=40)), BUCKET, "data/aclImdb")
    # The tasks reach the bucket only through the compiled file: its endpoint env and the secret it maps.
    spec, config, platform = compile_for_harness(tmp, "kfp", data_root=f"s3://{BUCKET}/data/aclImdb",
                                                 serving_dir=f"minio://{BUCKET}/serving", s3_endpoint=s3_server.endpoint)
    launcher_env = {**os.environ, **s3_server.env()}  # the launcher's own access (kfp-launcher config)
    secrets = {"mlpipeline-minio-artifact": {"accesskey": s3_server.access_key, "secretkey": s3_server.secret_key}}
    root, state = f"minio://{BUCKET}/v2/artifacts", str(tmp / "state")
    first = LocalKfpRun(spec, root, mode="oss", env=launcher_env, state_dir=state, platform=platform, secrets=secrets)
    first.run()
    versions_after_first = served_versions(s3_server)
    second = LocalKfpRun(spec, root, mode="oss", env=launcher_env, state_dir=state, platform=platform,
                         secrets=secrets)
    second.run()
    return {"first": first, "second": second, "config": config, "versions_after_first": versions_after_first,
            "s3": s3_server}


def served_versions(server):
    return sorted({key.split("/")[1] for key in server.keys(BUCKET, "serving/")})


def read_object(server, uri):
    from models.storage import bucket_and_key

    bucket, key = bucket_and_key(uri)
    return server.client().get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(scope="session")
def vertex_run(tmp_path_factory):
    from kubeflow.local_harness import LocalKfpRun

    tmp = tmp_path_factory.mktemp("harness-vertex")
    spec, config = compile_for_harness(tmp, "vertex")
    run = LocalKfpRun(spec, str(tmp / "root"), mode="vertex")
    run.run()
    run.serving_dir = config.resolved_serving_dir
    return run


def metadata(run, task, output):
    return run.results[task].outputs[output][0]["metadata"]


def log_text(run, task):
    with open(run.results[task].log, encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.e2e
def test_oss_run_executes_every_task_to_a_pushed_servable_model(oss_runs, s3_env):
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
    assert model["uri"].startswith(f"minio://{BUCKET}/v2/artifacts/")
    keys = s3.keys(BUCKET, "v2/artifacts/")
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
    served = oss_runs["s3"].keys(BUCKET, f"serving/{oss_runs['versions_after_first'][0]}/")
    assert any(key.endswith("assets.extra/blessing_metrics.json") for key in served)  # the next bar
    assert any(key.endswith("assets.extra/train_statistics.pb") for key in served)    # the next drift reference
    assert metadata(second, "Pusher", "pushed_model")["already_serving"] == 1
    assert served_versions(oss_runs["s3"]) == oss_runs["versions_after_first"]
    assert second.results["Trainer"].outputs == first.results["Trainer"].outputs  # served from the cache


@pytest.mark.e2e
@pytest.mark.slow  # a whole third harness run (~6 min on 2 cores); the vertex spec is still compiled and checked
def test_vertex_mode_keeps_types_answers_resolvers_and_pushes(vertex_run):
    """The whole Vertex-mode run: typed inputs (no repair needed), the Resolver answered from the
    artifact registry (nothing blessed yet), and a blessed model pushed."""
    how = {name: result.how for name, result in vertex_run.results.items()}
    resolvers = {f"{RESOLVER}-model-blessing-resolver", f"{RESOLVER}-model-resolver"}
    assert {name for name, way in how.items() if way == "resolved"} == resolvers
    assert all(way == "executed" for name, way in how.items() if name not in resolvers)
    assert {"ImdbExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"} <= set(how)
    assert vertex_run.results[f"{RESOLVER}-model-resolver"].outputs == {"model": []}  # nothing blessed yet
    assert "executor input needed no repair" in log_text(vertex_run, "StatisticsGen")
    stats = vertex_run.results["StatisticsGen"].outputs["statistics"][0]
    assert stats["name"].startswith("projects/local/") and json.loads(stats["metadata"]["split_names"])
    assert metadata(vertex_run, "BlessingGate", "blessing")["blessed"] == 1
    assert metadata(vertex_run, "Pusher", "pushed_model")["pushed"] == 1
    assert any(os.path.isfile(os.path.join(vertex_run.serving_dir, v, "saved_model.pb"))
               for v in os.listdir(vertex_run.serving_dir))


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
    from kubeflow.local_harness import LocalKfpRun

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
