"""Contract of `submit`/`schedule` with the real kfp.Client against a local stand-in of the KFP API.

The stand-in (127.0.0.1, API v2beta1) applies the API server's documented checks
(kubeflow/pipelines backend/src/apiserver: v2_template.go for the spec, api_converter.go for
recurring runs) with its own code, and records every request.
"""
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from kubeflow import cron, submit
from pipeline import kubeflow_commands as cli
from models.errors import UserError

SPEC_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def server_spec_problem(spec):
    """v2_template.go NewV2SpecTemplate: strict protojson parse, 2.1.0, name, root."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    try:
        proto = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as err:
        return f"invalid v2 pipeline spec: {err}"
    if proto.schema_version != "2.1.0":
        return f"KFP only supports schema version 2.1.0, but the pipeline spec has version {proto.schema_version}"
    if not proto.pipeline_info.name or not SPEC_NAME.search(proto.pipeline_info.name):
        return "invalid v2 pipeline spec: name is empty"
    if not proto.HasField("root"):
        return "invalid v2 pipeline spec: root component is empty"
    return None


class FakeKfpApi(BaseHTTPRequestHandler):
    requests = None  # set per server
    experiments = None

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, message):
        self._reply(400, {"error_message": message, "code": 3})

    def do_GET(self):
        url = urlparse(self.path)
        self.requests.append(("GET", url.path, dict(self.headers), None))
        if url.path == "/apis/v2beta1/healthz":
            return self._reply(200, {"multi_user": False})
        if url.path == "/apis/v2beta1/experiments":
            wanted = json.loads(parse_qs(url.query).get("filter", ["{}"])[0] or "{}")
            names = [p.get("string_value") or p.get("stringValue") for p in wanted.get("predicates", [])]
            found = [e for e in self.experiments if not names or e["display_name"] in names]
            return self._reply(200, {"experiments": found, "total_size": len(found)})
        return self._reply(404, {"error_message": f"no route {url.path}"})

    def do_POST(self):
        url = urlparse(self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.requests.append(("POST", url.path, dict(self.headers), body))
        if url.path == "/apis/v2beta1/experiments":
            experiment = {"experiment_id": str(uuid.uuid4()), "display_name": body["display_name"]}
            self.experiments.append(experiment)
            return self._reply(200, experiment)
        if url.path in ("/apis/v2beta1/runs", "/apis/v2beta1/recurringruns"):
            problem = server_spec_problem(body.get("pipeline_spec") or {})
            if problem:
                return self._refuse(problem)
            if url.path.endswith("runs") and "recurring" not in url.path:
                return self._reply(200, {"run_id": str(uuid.uuid4()), "display_name": body.get("display_name")})
            concurrency = int(body.get("max_concurrency") or 0)
            if not 1 <= concurrency <= 10:  # api_converter.go toModelJob
                return self._refuse("Max concurrency of a recurring run must be at least 1 and at most 10. "
                                    f"Received {concurrency}")
            expression = (body.get("trigger") or {}).get("cron_schedule", {}).get("cron")
            if expression is not None:
                try:
                    cron.parse(expression)  # robfig/cron v1 Parse: 5 or 6 fields, seconds first
                except cron.CronError as err:
                    return self._refuse("Schedule cron is not a supported format(https://godoc.org/github.com/"
                                        f"robfig/cron). Error: {err}")
            return self._reply(200, {"recurring_run_id": str(uuid.uuid4()), "display_name": body.get("display_name")})
        return self._reply(404, {"error_message": f"no route {url.path}"})


@pytest.fixture
def api():
    handler = type("Handler", (FakeKfpApi,), {"requests": [], "experiments": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    from pipeline.kubeflow_commands import compile_config
    from kubeflow.settings import KubeflowSettings
    from pipeline.configs import PipelineConfig

    config = PipelineConfig(data_root="gs://bucket/aclImdb", serving_dir="gs://bucket/serving")
    return compile_config(config, KubeflowSettings(target="kfp", image="registry.example/imdb:1",
                                                     output=str(tmp_path_factory.mktemp("pkg") / "kfp.yaml")))


def posted(requests, path):
    return [body for method, url, _, body in requests if method == "POST" and url == path]


def test_schedule_sends_spec_six_field_cron_concurrency_no_catchup_and_root(api, package):
    host, requests = api
    job_id = submit.schedule_kfp(package, "gs://bucket/pipeline_root", host, "imdb", "nightly", "0 0 2 * * *",
                                 max_concurrency=2, params={})
    [body] = posted(requests, "/apis/v2beta1/recurringruns")
    assert job_id and body["display_name"] == "nightly"
    assert body["pipeline_spec"]["schemaVersion"] == "2.1.0"
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "imdb-sentiment"
    assert "Evaluator" in body["pipeline_spec"]["root"]["dag"]["tasks"]
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * *"
    assert int(body["max_concurrency"]) == 2 and body["no_catchup"] is True
    assert body["runtime_config"]["pipeline_root"] == "gs://bucket/pipeline_root"
    [experiment] = posted(requests, "/apis/v2beta1/experiments")
    assert experiment["display_name"] == "imdb"


def test_submit_sends_the_spec_root_and_parameters(api, package):
    host, requests = api
    run_id = submit.submit_kfp(package, "gs://bucket/pipeline_root", host, "imdb", "manual-1", params={})
    [body] = posted(requests, "/apis/v2beta1/runs")
    assert run_id and body["display_name"] == "manual-1"
    assert body["runtime_config"]["pipeline_root"] == "gs://bucket/pipeline_root"
    assert body["pipeline_spec"]["schemaVersion"] == "2.1.0"


def test_five_field_cron_is_refused_before_any_request_although_the_server_would_take_it(api, package):
    host, requests = api
    with pytest.raises(UserError, match="six fields, seconds first"):
        submit.schedule_kfp(package, "gs://bucket/root", host, "imdb", "nightly", "0 2 * * *")
    assert requests == []
    # The trap is real: the server's own rules accept it, and it would run hourly at minute 2.
    import kfp
    client = kfp.Client(host=host)
    experiment = client.create_experiment("raw")
    client.create_recurring_run(experiment.experiment_id, "hourly-by-mistake", cron_expression="0 2 * * *",
                                pipeline_package_path=package, pipeline_root="gs://bucket/root")
    assert posted(requests, "/apis/v2beta1/recurringruns")[0]["trigger"]["cron_schedule"]["cron"] == "0 2 * * *"


def test_server_rules_on_concurrency_and_cron_are_enforced_and_reported_in_a_sentence(api, package):
    import kfp
    from kfp_server_api.exceptions import ApiException

    host, _ = api
    client = kfp.Client(host=host)
    experiment_id = client.create_experiment("raw").experiment_id
    for kwargs, fragment in (({"cron_expression": "0 0 2 * * *", "max_concurrency": 11}, "at most 10"),
                             ({"cron_expression": "0 0 25 * * *", "max_concurrency": 1}, "End of range")):
        with pytest.raises(ApiException, match=fragment):
            client.create_recurring_run(experiment_id, "x", pipeline_package_path=package,
                                        pipeline_root="gs://b/r", **kwargs)
    with pytest.raises(UserError, match="between 1 and 10"):
        submit.schedule_kfp(package, "gs://b/r", host, "imdb", "x", "0 0 2 * * *", max_concurrency=11)


def test_a_schema_2_0_spec_is_refused_locally_and_by_the_server(api, package, tmp_path):
    import kfp
    from kfp_server_api.exceptions import ApiException

    host, requests = api
    spec = yaml.safe_load(open(package, encoding="utf-8"))
    spec["schemaVersion"] = "2.0.0"
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError, match="accepts only 2.1.0"):
        submit.submit_kfp(str(old), "gs://b/r", host, "imdb", "r")
    assert posted(requests, "/apis/v2beta1/runs") == []
    client = kfp.Client(host=host)
    with pytest.raises(ApiException, match="only supports schema version 2.1.0"):
        client.run_pipeline(client.create_experiment("raw").experiment_id, "r", pipeline_package_path=str(old),
                            pipeline_root="gs://b/r")


def test_server_refusal_reaches_the_user_as_one_sentence(api, package, monkeypatch):
    host, _ = api
    monkeypatch.setattr(FakeKfpApi, "do_POST", lambda self: self._refuse("quota exceeded in namespace"))
    with pytest.raises(UserError, match=r"refused to .*\(HTTP 400\): quota exceeded in namespace"):
        submit.submit_kfp(package, "gs://b/r", host, "imdb", "r")


def test_token_comes_from_the_environment_and_never_enters_the_request_body(api, package, monkeypatch):
    host, requests = api
    monkeypatch.setenv(submit.TOKEN_ENV, "tok-123")
    # the fake API server is plain http on loopback: the trusted-endpoint case --insecure is for
    submit.submit_kfp(package, "gs://b/r", host, "imdb", "r", client=submit.kfp_client(host, insecure=True))
    run_request = [(headers, body) for method, url, headers, body in requests if url == "/apis/v2beta1/runs"][0]
    headers = {key.lower(): value for key, value in run_request[0].items()}
    assert headers.get("authorization") == "Bearer tok-123"
    assert "tok-123" not in json.dumps(run_request[1])


@pytest.mark.parametrize("variable, value", [("TOKEN_ENV", "tok-123"), ("SA_TOKEN_PATH_ENV", "/var/run/token")])
@pytest.mark.parametrize("host", ["http://ml-pipeline.kubeflow:8888", "HTTP://10.0.0.7:8888"])
def test_a_token_is_not_sent_over_plain_http_beyond_loopback_before_any_request(package, monkeypatch, variable,
                                                                                value, host):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError(f"network call {args}")

    monkeypatch.setenv(getattr(submit, variable), value)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    message = (f"Refusing to send the KFP token from {getattr(submit, variable)} to {host} over plain http: pass "
               "--insecure if this is a trusted in-cluster endpoint such as http://ml-pipeline.kubeflow:8888, "
               "or use an https:// endpoint.")
    with pytest.raises(UserError) as caught:
        submit.submit_kfp(package, "gs://b/r", host, "imdb", "r")
    assert str(caught.value) == message
    submit.check_token_transport(host, insecure=True)  # the trusted in-cluster endpoint, on request
    submit.check_token_transport("https://" + host.split("://", 1)[1])
    submit.check_token_transport("ml-pipeline.kubeflow:8888")  # no scheme: kfp.Client uses https


@pytest.mark.parametrize("loopback", ["http://localhost:8080", "http://127.0.0.2:8080", "http://[::1]:8080"])
def test_a_token_may_go_over_plain_http_to_loopback(monkeypatch, loopback):
    monkeypatch.setenv(submit.TOKEN_ENV, "tok-123")
    submit.check_token_transport(loopback)  # a port-forward: the token does not leave this machine


def test_a_token_reaches_a_loopback_endpoint_without_insecure(api, package, monkeypatch):
    host, requests = api
    monkeypatch.setenv(submit.TOKEN_ENV, "tok-123")
    submit.submit_kfp(package, "gs://b/r", host, "imdb", "r")
    [run] = [headers for method, url, headers, body in requests if url == "/apis/v2beta1/runs"]
    assert {key.lower(): value for key, value in run.items()}.get("authorization") == "Bearer tok-123"


def test_local_or_missing_pipeline_root_is_refused(api, package):
    host, requests = api
    with pytest.raises(UserError, match=r"needed at submission \(--pipeline-root minio://mlpipeline/v2/artifacts "):
        submit.submit_kfp(package, "", host, "imdb", "r")
    with pytest.raises(UserError, match="path on this machine.*minio://mlpipeline/private-artifacts/team-a/v2/artifacts"):
        submit.submit_kfp(package, "/tmp/root", host, "imdb", "r", namespace="team-a")
    assert requests == []


@pytest.mark.parametrize("root, namespace, warned", [
    ("minio://mlpipeline/v2/artifacts", "team-a", False),                  # single-user stock root
    ("minio://mlpipeline/private-artifacts/team-a/v2/artifacts", "team-a", False),  # the profile's default
    ("s3://mlpipeline/private/team-a/runs", "team-a", False),
    ("minio://mlpipeline/shared/imdb", "team-a", False),
    ("minio://mlpipeline/artifacts/imdb", "team-a", False),
    ("minio://mlpipeline/private-artifacts/team-b/v2/artifacts", "team-a", True),  # another namespace's
    ("minio://mlpipeline/pipeline_root", "team-a", True),
    ("minio://mlpipeline/v2/artifacts-old", "team-a", True),
    ("minio://mlpipeline/pipeline_root", None, False),                     # no namespace: single-user
    ("minio://other-bucket/pipeline_root", "team-a", False),               # not the stock bucket
    ("gs://mlpipeline/pipeline_root", "team-a", False),
])
def test_a_root_outside_the_namespace_prefixes_of_the_stock_bucket_is_warned_about(root, namespace, warned):
    warning = submit.pipeline_root_warning(root, namespace)
    assert bool(warning) == warned
    if warned:
        assert warning == ("Warning: on a multi-user KFP install the namespace team-a may use only "
                           "private-artifacts/team-a/, private/team-a/, shared/ or artifacts/ in the bucket "
                           "mlpipeline (its profile's root is minio://mlpipeline/private-artifacts/team-a/v2/artifacts), "
                           f"so the pipeline root {root} may be refused when a task writes.")


def test_cli_submit_warns_about_such_a_root_and_still_submits(api, package, capsys):
    import argparse

    host, requests = api
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["submit", package, "--host", host, "--namespace", "team-a",
                              "--pipeline-root", "minio://mlpipeline/pipeline_root"])
    assert args.handler(args) == 0
    assert posted(requests, "/apis/v2beta1/runs")
    assert "may use only private-artifacts/team-a/" in capsys.readouterr().err


def test_cli_schedule_command_end_to_end(api, package, capsys):
    import argparse

    host, requests = api
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["schedule", package, "--host", host, "--pipeline-root", "gs://b/root",
                              "--cron", "0 30 3 * * *", "--max-concurrency", "3", "--name", "nightly"])
    assert args.handler(args) == 0
    [body] = posted(requests, "/apis/v2beta1/recurringruns")
    assert body["trigger"]["cron_schedule"]["cron"] == "0 30 3 * * *" and int(body["max_concurrency"]) == 3
    assert "no catch-up" in capsys.readouterr().out


def test_cli_params_are_json_when_they_parse():
    assert cli.parse_params(["a=1", "b=text", "c={\"k\": [1]}"]) == {"a": 1, "b": "text", "c": {"k": [1]}}
    with pytest.raises(UserError, match="KEY=VALUE"):
        cli.parse_params(["novalue"])


def test_vertex_job_is_built_with_root_and_spec_and_its_cron_is_five_fields(package, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from pipeline.kubeflow_commands import compile_config
    from kubeflow.settings import KubeflowSettings
    from pipeline.configs import PipelineConfig

    vertex_package = compile_config(PipelineConfig(data_root="gs://b/aclImdb", serving_dir="gs://b/serving"),
                                      KubeflowSettings(target="vertex", image="registry.example/imdb:1",
                                                       output=str(tmp_path / "vertex.yaml")))
    job = submit.vertex_job(vertex_package, "gs://b/root", "proj", "europe-west4", "nightly",
                            credentials=AnonymousCredentials())
    assert job._gca_resource.runtime_config.gcs_output_directory == "gs://b/root"  # pylint: disable=protected-access
    assert job._gca_resource.pipeline_spec["schemaVersion"] == "2.1.0"  # pylint: disable=protected-access
    with pytest.raises(UserError, match="five fields"):
        submit.schedule_vertex(job, "0 0 2 * * *", "nightly")
