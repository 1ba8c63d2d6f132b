"""Object storage against a real S3 server (SeaweedFS, started by the session): the pre-flight
sentences, the exit code after S3 use, TensorFlow and Beam on s3:// and minio://, and the KFP
launcher's download/upload as the harness re-enacts it."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from models import storage
from models.errors import UserError

CLI = str(Path(sys.executable).parent / "imdb-pipeline")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- pre-flight: one sentence naming the URI and what to set ------------------------------------------
def test_unknown_scheme_is_refused_naming_the_flag():
    with pytest.raises(UserError, match=r"--data ftp://host/aclImdb uses the scheme ftp://.*gs://, s3:// or minio://"):
        storage.preflight({"--data": "ftp://host/aclImdb"})


def test_minio_without_an_endpoint_names_s3_endpoint(monkeypatch):
    for key in ("S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(UserError, match=r"--serving-dir minio://mlpipeline/serving is on MinIO, but no S3 "
                                        r"endpoint is configured: set S3_ENDPOINT"):
        storage.check_location("minio://mlpipeline/serving", "--serving-dir")


def test_unreachable_endpoint_names_the_endpoint(s3_env, monkeypatch):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("S3_ENDPOINT", endpoint)
    with pytest.raises(UserError, match=rf"--data s3://imdb/aclImdb: cannot reach the S3 endpoint {endpoint} "
                                        r".*set S3_ENDPOINT"):
        storage.check_location("s3://imdb/aclImdb", "--data")


def test_wrong_credentials_are_told_apart_from_a_missing_bucket(s3_env, monkeypatch):
    s3_env.create_bucket("preflight-creds")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(UserError, match=r"refused the credentials for bucket preflight-creds; check "
                                        r"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        storage.check_location("s3://preflight-creds/serving", "--serving-dir")


def test_missing_bucket_is_named(s3_env):
    with pytest.raises(UserError, match=r"--pipeline-root minio://no-such-bucket/v2: the bucket no-such-bucket "
                                        r"does not exist at the S3 endpoint http://127\.0\.0\.1:\d+; create it"):
        storage.check_location("minio://no-such-bucket/v2", "--pipeline-root")


def test_run_stops_before_any_component_with_the_sentence(s3_env, tmp_path):
    env = {**os.environ}
    run = subprocess.run([CLI, "run", "--data", "s3://absent-data-bucket/aclImdb", "--workdir", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: --data s3://absent-data-bucket/aclImdb: the bucket absent-data-bucket does not exist at the S3 "
        f"endpoint {s3_env.endpoint}; create it (e.g. `aws --endpoint-url {s3_env.endpoint} s3 mb "
        f"s3://absent-data-bucket`) or fix the URI."]
    assert "started" not in run.stdout  # no component line


# -- the process's exit code after S3 use ------------------------------------------------------------------
_TOUCH_S3 = textwrap.dedent("""
    import sys
    from models import storage
    storage.enable_s3()
    import tensorflow as tf
    tf.io.gfile.exists("s3://{bucket}/anything")
    if sys.argv[1] == "exit_process":
        storage.exit_process(3)
    sys.exit(3)
""")


@pytest.mark.parametrize("how, expected", [("exit_process", 3), ("sys.exit", -6)])
def test_exit_code_survives_the_aws_sdk_abort(s3_env, how, expected):
    """sys.exit(3) after S3 use dies with SIGABRT ("pure virtual method called"): the bug is real,
    and exit_process keeps the code."""
    bucket = s3_env.create_bucket(f"exit-{how.replace('.', '-').replace('_', '-')}")
    done = subprocess.run([sys.executable, "-c", _TOUCH_S3.format(bucket=bucket), how], capture_output=True,
                          text=True, timeout=120, cwd=str(Path(__file__).resolve().parent.parent))
    assert done.returncode == expected, done.stderr[-2000:]


# -- TensorFlow and Beam reach the same server from the standard variables ------------------------------------
def test_tensorflow_and_beam_read_what_the_other_wrote(s3_env, tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    storage.enable_s3()
    import tensorflow as tf

    bucket = s3_env.create_bucket("tf-and-beam")
    with tf.io.gfile.GFile(f"minio://{bucket}/tf/hello.txt".replace("minio://", "s3://"), "w") as handle:
        handle.write("from tensorflow")
    with beam.Pipeline(options=PipelineOptions([])) as pipeline:
        (pipeline | beam.io.ReadFromText(f"s3://{bucket}/tf/hello.txt")
         | beam.io.WriteToText(f"s3://{bucket}/beam/out", shard_name_template=""))
    with tf.io.gfile.GFile(storage.normalize(f"minio://{bucket}/beam/out")) as handle:
        assert handle.read().strip() == "from tensorflow"


# -- the launcher as the harness re-enacts it -------------------------------------------------------
def test_launcher_download_turns_a_dir_marker_into_a_file_and_then_fails(s3_env, tmp_path):
    """What kubeflow/pipelines#13476 is: the reason the shim never lets TensorFlow write artifacts."""
    from testing.kfp_harness.harness import _S3Store

    bucket = s3_env.create_bucket("launcher-markers")
    client = s3_env.client()
    client.put_object(Bucket=bucket, Key="run/Trainer/model/Format-Serving/", Body=b"")
    client.put_object(Bucket=bucket, Key="run/Trainer/model/Format-Serving/saved_model.pb", Body=b"x")
    client.put_object(Bucket=bucket, Key="run/Trainer/model_run/log.txt", Body=b"y")
    store = _S3Store(dict(os.environ))
    with pytest.raises(OSError):
        store.download(f"minio://{bucket}/run/Trainer/model", str(tmp_path / "minio" / "model"), skip_siblings=False)
    assert (tmp_path / "minio" / "model" / "Format-Serving").is_file()  # the marker became a file
    client.delete_object(Bucket=bucket, Key="run/Trainer/model/Format-Serving/")
    assert store.download(f"minio://{bucket}/run/Trainer/model", str(tmp_path / "clean" / "model"),
                          skip_siblings=False) == 2
    assert (tmp_path / "clean" / "model" / "Format-Serving" / "saved_model.pb").read_bytes() == b"x"
    # before KFP 2.17 a sibling sharing the prefix lands beside the artifact (filepath.Rel gives ../model_run/...)
    assert (tmp_path / "clean" / "model_run" / "log.txt").read_bytes() == b"y"
    # 2.17's DownloadBlob skips it (objectstore/object_store.go isBlobKeyUnderPrefix)
    assert store.download(f"minio://{bucket}/run/Trainer/model", str(tmp_path / "new" / "model")) == 1
    assert not (tmp_path / "new" / "model_run").exists()


_READ_BACK = textwrap.dedent("""
    import os, sys
    from models import storage
    storage.enable_s3()
    import tensorflow as tf
    body = bytes(range(256)) * 20_000 + b"tail"          # 5 MB and a bit, not a multiple of any buffer
    with tf.io.gfile.GFile("s3://{bucket}/big.bin", "wb") as handle:
        handle.write(body)
    with tf.io.gfile.GFile("s3://{bucket}/big.bin", "rb") as handle:
        print("exact" if handle.read() == body else "corrupted", flush=True)
    storage.exit_process(0)
""")


@pytest.mark.parametrize("multi_part, expected", [(None, "exact"), ("0", "corrupted")])
def test_tensorflow_reads_back_what_it_wrote_only_without_multi_part_download(s3_env, multi_part, expected):
    """tensorflow-io 0.37.1's multi-part download corrupts reads (the server's 416 error body lands
    in the buffer): enable_s3 turns it off; turned back on, the defect shows."""
    bucket = s3_env.create_bucket(f"read-back-{expected}")
    env = dict(os.environ)
    if multi_part is not None:
        env["S3_DISABLE_MULTI_PART_DOWNLOAD"] = multi_part
    done = subprocess.run([sys.executable, "-c", _READ_BACK.format(bucket=bucket)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=str(Path(__file__).resolve().parent.parent))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == expected


def test_a_saved_model_on_s3_loads_through_a_local_copy(s3_env, tmp_path):
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return 2 * x

    tf.saved_model.save(Doubler(), str(tmp_path / "model"))
    bucket = s3_env.create_bucket("saved-models")
    s3_env.upload_tree(str(tmp_path / "model"), bucket, "served/7")
    local = storage.loadable_path(f"minio://{bucket}/served/7")
    assert os.path.isfile(os.path.join(local, "saved_model.pb")) and not local.startswith("s3:")
    assert tf.saved_model.load(local).double(tf.constant([1.5])).numpy().tolist() == [3.0]
    assert storage.loadable_path(str(tmp_path / "model")) == str(tmp_path / "model")  # local: in place


def test_a_local_run_refuses_an_s3_pipeline_root_saying_why(s3_env, tmp_path):
    from pipeline.configs import PipelineConfig
    from pipeline.local_runner import check_storage

    bucket = s3_env.create_bucket("local-root")
    config = PipelineConfig(data_root=str(tmp_path), workdir=str(tmp_path), pipeline_root=f"minio://{bucket}/root")
    with pytest.raises(UserError, match=r"--pipeline-root s3://local-root/root: a local run cannot keep its "
                                        r"artifacts on S3, because tensorflow-io 0.37.1"):
        check_storage(config)


def test_one_set_of_standard_variables_reaches_tensorflow_and_boto3():
    added = storage.s3_environment({"S3_ENDPOINT": "minio.kubeflow:9000", "S3_USE_HTTPS": "0",
                                    "AWS_REGION": "eu-west-1", "S3_VERIFY_SSL": "0"})
    assert added == {"S3_ENDPOINT": "http://minio.kubeflow:9000", "AWS_ENDPOINT_URL_S3": "http://minio.kubeflow:9000",
                     "S3_DISABLE_MULTI_PART_DOWNLOAD": "1", "AWS_DEFAULT_REGION": "eu-west-1"}
    https = storage.s3_environment({"AWS_ENDPOINT_URL_S3": "https://s3.example.com"})
    assert https["S3_ENDPOINT"] == "https://s3.example.com" and https["S3_USE_HTTPS"] == "1"
    assert storage.s3_environment({})["AWS_REGION"] == storage.DEFAULT_REGION  # no endpoint: AWS itself
    assert storage.normalize("minio://mlpipeline/v2/x") == "s3://mlpipeline/v2/x"
    assert storage.normalize("file:///data/aclImdb") == "/data/aclImdb"
