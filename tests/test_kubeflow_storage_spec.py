"""S3-compatible storage (MinIO) and pod sizes in the compiled KFP spec: env, secret, resources.

One compile through the CLI, with S3 settings and distinctive credentials in this process's
environment that must not reach the file; the other tests reuse it or need no compile.
"""
import argparse
import contextlib
import io
import json
import os
import tempfile

import pytest
import yaml

from kubeflow import compiler, spec_check
from kubeflow.settings import DEFAULT_S3_SECRET, KubeflowSettings, check_endpoint, memory_gb
from models.errors import UserError
from pipeline import kubeflow_commands

IMAGE = "registry.example/imdb-sentiment:abc123"
ENDPOINT = "http://minio-service.kubeflow:9000"
LEAKS = {"AWS_ACCESS_KEY_ID": "AKIALEAKCANARY0001", "AWS_SECRET_ACCESS_KEY": "leak-canary-secret-0002",
         "S3_ENDPOINT": "http://leak-canary-endpoint.invalid:9999", "AWS_SESSION_TOKEN": "leak-canary-token-0003",
         "AWS_REGION": "leak-canary-region-4"}
SECRET_AS_ENV = [{"secretName": DEFAULT_S3_SECRET,
                  "keyToEnv": [{"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
                               {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"}]}]


def run_compile(*argv):
    parser = argparse.ArgumentParser()
    kubeflow_commands.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compile", "--target", "kfp", "--image", IMAGE, *argv])
    return args.handler(args)


@pytest.fixture(scope="module")
def s3_compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("s3compiled")
    config_file = out / "sizes.yaml"
    config_file.write_text("trainer_memory: 8Gi\ntrainer_cpu: 3\n")
    output = out / "kfp-s3.yaml"
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        for key, value in LEAKS.items():
            patch.setenv(key, value)
        assert run_compile("--output", str(output), "--config", str(config_file),
                           "--data", "s3://imdb/aclImdb", "--serving-dir", "minio://imdb/serving",
                           "--s3-endpoint", ENDPOINT + "/", "--s3-no-verify") == 0
    text = output.read_text(encoding="utf-8")
    spec, platform = spec_check.load_documents(str(output))
    return {"path": str(output), "dir": str(out), "text": text, "spec": spec, "platform": platform,
            "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def containers(spec):
    return {label: executor["container"] for label, executor in spec["deploymentSpec"]["executors"].items()
            if "container" in executor}


def test_nothing_from_the_compiling_machine_reaches_the_file(s3_compiled):
    text = s3_compiled["text"]
    for key, value in LEAKS.items():
        assert value not in text, key
    assert "leak-canary" not in text
    assert os.path.expanduser("~") + "/" not in text and os.getcwd() not in text
    assert s3_compiled["dir"] not in text and tempfile.gettempdir() + "/" not in text


def test_every_container_task_gets_the_endpoint_and_the_secret(s3_compiled):
    spec, platform = s3_compiled["spec"], s3_compiled["platform"]
    labels = sorted(containers(spec))
    assert len(labels) == len(spec["root"]["dag"]["tasks"]) == 12
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert sorted(executors) == labels
    for label, container in containers(spec).items():
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["S3_ENDPOINT"] == ENDPOINT and env["S3_USE_HTTPS"] == "0", label
        assert env["AWS_REGION"] == "us-east-1" and env["S3_VERIFY_SSL"] == "0", label
        assert env["KFP_STAGED_SCHEMES"] == "minio,s3,gs", label
        assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env, label
        assert executors[label] == {"secretAsEnv": SECRET_AS_ENV}, label


def test_both_documents_parse_strictly_and_the_kfp_client_reads_them(s3_compiled):
    documents = [doc for doc in yaml.safe_load_all(s3_compiled["text"]) if doc]
    assert len(documents) == 2 and documents[0] == s3_compiled["spec"] and documents[1] == s3_compiled["platform"]
    assert "&id" not in s3_compiled["text"]  # no YAML anchors shared between executors
    spec_check.parse_strict(s3_compiled["spec"])  # unknown fields raise, as on the API server
    proto = spec_check.parse_platform_strict(s3_compiled["platform"])
    assert list(proto.platforms) == ["kubernetes"]
    assert spec_check.problems(s3_compiled["spec"], "kfp") == []
    assert spec_check.platform_problems(s3_compiled["platform"], s3_compiled["spec"]) == []
    assert spec_check.load_spec_file(s3_compiled["path"]) == s3_compiled["spec"]
    assert spec_check.load_platform_spec(s3_compiled["path"]) == s3_compiled["platform"]
    from kfp.client.client import _extract_pipeline_yaml

    from kubeflow import submit

    submit.check_package(s3_compiled["path"], "kfp", "minio://mlpipeline/v2/artifacts")  # the submit path's check
    doc = _extract_pipeline_yaml(s3_compiled["path"])
    # What run_pipeline sends; the API server (api_converter.go pipelineSpecStructToYamlString) turns it
    # back into two documents and keeps the second only if it parses strictly as a PlatformSpec with
    # a kubernetes entry (v2_template.go IsPlatformSpecWithKubernetesConfig).
    sent = doc.to_dict()
    assert set(sent) == {"pipeline_spec", "platform_spec"}
    assert spec_check.problems(sent["pipeline_spec"], "kfp") == []
    assert spec_check.platform_problems(sent["platform_spec"], sent["pipeline_spec"]) == []
    assert "Trainer_executor" in doc.platform_spec.platforms["kubernetes"].deployment_spec.executors


def test_transform_and_trainer_get_cpu_and_memory(s3_compiled):
    from kfp.pipeline_spec import pipeline_spec_pb2
    from google.protobuf import json_format

    deployment = json_format.ParseDict(s3_compiled["spec"]["deploymentSpec"],
                                       pipeline_spec_pb2.PipelineDeploymentConfig())
    trainer = deployment.executors["Trainer_executor"].container.resources
    transform = deployment.executors["Transform_executor"].container.resources
    assert (trainer.cpu_request, trainer.cpu_limit) == (3, 3)  # from the --config file
    assert trainer.memory_request == trainer.memory_limit == pytest.approx(8 * 2**30 / 1e9)
    assert (transform.cpu_request, transform.cpu_limit) == (2, 2)  # defaults
    assert transform.memory_request == transform.memory_limit == pytest.approx(4 * 2**30 / 1e9)
    unsized = {label for label, c in containers(s3_compiled["spec"]).items() if "resources" not in c}
    assert unsized == set(containers(s3_compiled["spec"])) - {"Trainer_executor", "Transform_executor"}


def test_memory_quantities_in_kfp_gigabytes():
    assert memory_gb("6Gi") == pytest.approx(6.442450944) and memory_gb("500M") == 0.5
    assert compiler.container_resources(0, "") == {}
    assert compiler.container_resources(0.5, "") == {"cpuRequest": 0.5, "cpuLimit": 0.5}
    with pytest.raises(UserError, match="memory size"):
        memory_gb("6 GB")


def test_https_endpoint_custom_secret_and_region(s3_compiled):
    settings = KubeflowSettings(target="kfp", image=IMAGE, s3_endpoint="HTTPS://s3.example.com",
                                s3_secret="team.minio-keys", s3_region="eu-central-1")
    env = {item["name"]: item["value"] for item in compiler.s3_env(settings)}
    assert env["S3_ENDPOINT"] == "https://s3.example.com" and env["S3_USE_HTTPS"] == "1"
    assert env["AWS_REGION"] == "eu-central-1" and "S3_VERIFY_SSL" not in env
    platform = compiler.platform_spec(s3_compiled["spec"], settings)
    entry = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["Pusher_executor"]["secretAsEnv"][0]
    assert entry["secretName"] == "team.minio-keys"
    assert compiler.platform_spec(s3_compiled["spec"], KubeflowSettings(target="kfp", image=IMAGE)) is None


@pytest.mark.parametrize("url, fragment", [
    ("minio:9000", "http://HOST"), ("ftp://minio:21", "http://HOST"), ("http://", "http://HOST"),
    ("http://minio:9000/bucket", "no path"), ("http://minio:9000?region=x", "no spaces, query"),
    ("http://minio:99999", "out of range"), ("http://minio:0", "1-65535"), ("http://minio:", "1-65535"),
    ("http://bad_host:9000", "not a host name"), ("http://mi nio:9000", "no spaces"),
])
def test_endpoint_must_be_scheme_host_and_port(url, fragment):
    with pytest.raises(UserError, match=fragment):
        check_endpoint(url)


def test_endpoint_accepts_ip_addresses_and_drops_a_trailing_slash():
    assert check_endpoint("http://10.0.0.5:9000/") == "http://10.0.0.5:9000"
    assert check_endpoint("https://[::1]:9000") == "https://[::1]:9000"


def test_credentials_in_the_endpoint_are_refused_without_repeating_them():
    with pytest.raises(UserError, match="credentials") as caught:
        KubeflowSettings(target="kfp", image=IMAGE, s3_endpoint="http://minio:hunter2pw@minio:9000")
    assert "hunter2pw" not in str(caught.value)


@pytest.mark.parametrize("changes, fragment", [
    ({"target": "vertex", "s3_endpoint": ENDPOINT}, "Vertex AI Pipelines keeps artifacts and data on gs://"),
    ({"s3_endpoint": ENDPOINT, "s3_secret": "Minio_Keys"}, "not a Kubernetes name"),
    ({"s3_endpoint": ENDPOINT, "s3_secret": "a" * 254}, "not a Kubernetes name"),
    ({"s3_endpoint": ENDPOINT, "s3_region": "us east"}, "region name"),
    ({"s3_endpoint": ENDPOINT, "s3_ca_bundle": "ca.crt"}, "absolute path inside the pod"),
    ({"s3_endpoint": ENDPOINT, "s3_ca_bundle": "/etc/ssl/ca.crt", "s3_verify_ssl": False}, "contradict"),
    ({"s3_ca_bundle": "/etc/ssl/ca.crt"}, "needs an S3 endpoint"),
])
def test_settings_refuse_bad_s3_values(changes, fragment):
    with pytest.raises(UserError, match=fragment):
        KubeflowSettings(**{"target": "kfp", "image": IMAGE, **changes})


def test_cli_refuses_s3_options_without_an_endpoint_and_vertex_with_one(tmp_path):
    with pytest.raises(UserError, match="--s3-secret, --s3-no-verify only apply with --s3-endpoint"):
        run_compile("--s3-secret", "keys", "--s3-no-verify", "--data", "gs://b/d")
    parser = argparse.ArgumentParser()
    kubeflow_commands.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compile", "--target", "vertex", "--image", IMAGE, "--s3-endpoint", ENDPOINT,
                              "--output", str(tmp_path / "v.yaml")])
    with pytest.raises(UserError, match="Vertex"):
        args.handler(args)


@pytest.mark.parametrize("locations, target, fragment", [
    ({"data_root": "hdfs://cluster/imdb"}, "kfp", "scheme hdfs://"),
    ({"data_root": "gs://b/d", "serving_dir": "https://example.com/serving"}, "kfp", "scheme https://"),
    ({"data_root": "gs://b/d", "pretrained_embeddings": "ftp://host/glove.txt"}, "kfp", "scheme ftp://"),
    ({"data_root": "s3:///imdb"}, "kfp", "names no bucket"),
    ({"data_root": "file:///data/aclImdb"}, "kfp", "on this machine"),
    ({"data_root": "s3://b/d"}, "vertex", "Vertex AI Pipelines reads gs://"),
    ({"data_root": "gs://b/d", "serving_dir": "minio://b/serving"}, "kfp", "need the MinIO endpoint"),
    ({"data_root": "/data/aclImdb"}, "kfp", r"s3://BUCKET/\.\.\. with --s3-endpoint"),
])
def test_locations_with_unknown_schemes_or_unreachable_storage_are_refused(locations, target, fragment):
    with pytest.raises(UserError, match=fragment):
        compiler.check_locations(locations, KubeflowSettings(target=target, image=IMAGE), web=("hub_handle",))


def test_object_storage_and_a_hub_url_are_accepted():
    settings = KubeflowSettings(target="kfp", image=IMAGE, s3_endpoint=ENDPOINT)
    compiler.check_locations({"data_root": "s3://b/d", "serving_dir": "minio://b/serving",
                              "pretrained_embeddings": "gs://b/glove.txt",
                              "hub_handle": "https://tfhub.dev/google/nnlm-en-dim50/2"}, settings, web=("hub_handle",))


def write_documents(path, *documents):
    path.write_text(yaml.safe_dump_all(documents, sort_keys=True), encoding="utf-8")
    return str(path)


def test_a_file_without_platform_document_has_no_platform_spec(s3_compiled, tmp_path):
    path = write_documents(tmp_path / "bare.yaml", s3_compiled["spec"])
    assert spec_check.load_platform_spec(path) is None
    assert spec_check.load_spec_file(path) == s3_compiled["spec"]


@pytest.mark.parametrize("mutate, fragment", [
    (lambda p: p["platforms"]["kubernetes"].__setitem__("bogus", 1), "not a valid PlatformSpec"),
    (lambda p: p["platforms"].__setitem__("docker", {"deploymentSpec": {"executors": {}}}), "unknown to the open"),
    (lambda p: p["platforms"]["kubernetes"]["deploymentSpec"]["executors"].__setitem__("ghost_executor", {}),
     "missing executor 'ghost_executor'"),
    (lambda p: p["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["Trainer_executor"].__setitem__(
        "secretAsEnvironment", []), "unknown KubernetesExecutorConfig field 'secretAsEnvironment'"),
    (lambda p: p["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["Trainer_executor"]["secretAsEnv"][0]
     .__setitem__("secretName", "Bad_Name"), "Kubernetes secret name"),
    (lambda p: p["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["Trainer_executor"]["secretAsEnv"][0]
     ["keyToEnv"][0].__setitem__("env", "X"), "exactly secretKey and envVar"),
])
def test_platform_check_catches_what_the_driver_would_refuse(s3_compiled, tmp_path, mutate, fragment):
    platform = json.loads(json.dumps(s3_compiled["platform"]))
    mutate(platform)
    assert any(fragment in problem for problem in spec_check.platform_problems(platform, s3_compiled["spec"]))
    path = write_documents(tmp_path / "bad.yaml", s3_compiled["spec"], platform)
    with pytest.raises(UserError, match="platform document"):
        spec_check.load_spec_file(path)


def test_the_pipeline_spec_must_come_first(s3_compiled, tmp_path):
    path = write_documents(tmp_path / "swapped.yaml", s3_compiled["platform"], s3_compiled["spec"])
    with pytest.raises(UserError, match="must start with its PipelineSpec"):
        spec_check.load_spec_file(path)
    path = write_documents(tmp_path / "three.yaml", s3_compiled["spec"], s3_compiled["platform"],
                           s3_compiled["platform"])
    with pytest.raises(UserError, match="only one platform document"):
        spec_check.load_platform_spec(path)


BEAM_COMPONENTS = ("ImdbExampleGen", "StatisticsGen", "Transform", "Evaluator")


def test_no_verify_reaches_tensorflow_but_no_false_verify_flag_reaches_beam(s3_compiled):
    """Beam 2.59's --s3_verify is a plain string handed to boto3 as `verify`, which boto3 reads as a
    CA bundle path: --s3_verify=False would break every Beam S3 call, so the compiler adds none and
    says that Beam still checks the certificate (use --s3-ca-bundle)."""
    from apache_beam.options.pipeline_options import PipelineOptions, S3Options

    assert PipelineOptions(["--s3_verify=False"]).view_as(S3Options).s3_verify == "False"  # a path, not a bool
    executors = s3_compiled["spec"]["deploymentSpec"]["executors"]
    for task in BEAM_COMPONENTS:
        container = executors[compiler.executor_label(s3_compiled["spec"], task)]["container"]
        assert not any("s3_verify" in arg for arg in container["args"]), task
        assert {"name": "S3_VERIFY_SSL", "value": "0"} in container["env"], task
    assert "--s3-no-verify reaches TensorFlow only" in s3_compiled["stderr"]
    assert "--s3-ca-bundle" in s3_compiled["stderr"]


def test_ca_bundle_reaches_boto3_requests_and_tensorflow_in_every_task(tmp_path):
    output = tmp_path / "kfp-ca.yaml"
    assert run_compile("--output", str(output), "--data", "s3://imdb/aclImdb", "--serving-dir", "s3://imdb/serving",
                       "--s3-endpoint", "https://minio.example:9000", "--s3-ca-bundle", "/etc/minio-ca/ca.crt") == 0
    spec = spec_check.load_spec_file(str(output))
    for label, container in containers(spec).items():
        env = {item["name"]: item["value"] for item in container["env"]}
        for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "S3_CA_FILE"):
            assert env[name] == "/etc/minio-ca/ca.crt", (label, name)
        assert "S3_VERIFY_SSL" not in env, label
    with pytest.raises(UserError, match="--s3-ca-bundle only apply with --s3-endpoint"):
        run_compile("--s3-ca-bundle", "/etc/minio-ca/ca.crt", "--data", "gs://b/d")


def test_compile_suggests_the_stock_pipeline_root_and_the_multi_user_one(s3_compiled):
    out = s3_compiled["stdout"]
    assert "--pipeline-root minio://mlpipeline/v2/artifacts" in out
    assert "minio://mlpipeline/private-artifacts/NAMESPACE/v2/artifacts" in out
    assert "pipeline_root" not in out
