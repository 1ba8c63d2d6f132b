"""Object storage in every process: local paths, gs://, s3:// and minio:// behave alike.

TensorFlow 2.16 reads gs:// natively but s3:// only after `import tensorflow_io` (0.37.1, the
release built for TF 2.16), and Beam reads s3:// through boto3. Both take the endpoint and keys
from the environment, each in its own dialect; `enable_s3()` reconciles the two from the standard
variables:

    S3_ENDPOINT            http://HOST:PORT (TensorFlow wants the scheme; added from S3_USE_HTTPS if absent)
    S3_USE_HTTPS           0 for plain http (derived from the endpoint's scheme when unset)
    S3_VERIFY_SSL          0 to skip certificate checks (self-signed MinIO)
    AWS_REGION             any region name; MinIO and SeaweedFS ignore it (default us-east-1)
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY

Two defects of tensorflow-io 0.37.1's S3 reader, measured against SeaweedFS here, shape what
this module does (tests/test_object_storage.py shows both):
- its default multi-part download writes the server's "416 range not satisfiable" error body into
  the read buffer, so a 5 MB file read back through tf.io.gfile came back corrupted: `enable_s3()`
  sets S3_DISABLE_MULTI_PART_DOWNLOAD=1 (whole-file and chunked reads are then exact);
- reading a small file past its end in C++ (TensorFlow's proto reader: a SavedModel's
  fingerprint.pb) crashes the process: SavedModels are loaded from a local copy
  (`loadable_path`), never in place.

`minio://bucket/key` (the pipeline root of a stock KFP install) is the same object as
`s3://bucket/key` on that endpoint: `normalize()` rewrites it. Imported by workers on every
target, so it imports nothing of the project but `models.errors`, and TensorFlow/boto3 lazily.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, Iterable, MutableMapping, Optional
from urllib.parse import urlparse

from models.errors import UserError

S3_SCHEMES = ("s3", "minio")
REMOTE_SCHEMES = ("gs",) + S3_SCHEMES
DEFAULT_REGION = "us-east-1"
_TRUE = ("1", "true", "yes", "on")

log = logging.getLogger("imdb.storage")


def scheme_of(uri: str) -> str:
    """'gs', 's3', 'minio', ... for a URI; '' for a path on this machine (file:// included)."""
    if "://" not in uri:
        return ""
    scheme = uri.split("://", 1)[0].lower()
    return "" if scheme == "file" else scheme


def is_s3(uri: Optional[str]) -> bool:
    return bool(uri) and scheme_of(uri) in S3_SCHEMES


def normalize(uri: str) -> str:
    """The URI TensorFlow and Beam understand: minio://b/k -> s3://b/k, file:///p -> /p."""
    scheme = scheme_of(uri) if "://" in uri else ""
    if scheme == "minio":
        return "s3://" + uri.split("://", 1)[1]
    if uri.lower().startswith("file://"):
        return uri[len("file://"):]
    return uri


def bucket_and_key(uri: str) -> tuple[str, str]:
    parsed = urlparse(normalize(uri))
    return parsed.netloc, parsed.path.lstrip("/")


def check_scheme(uri: str, what: str) -> None:
    """Refuses a scheme neither TensorFlow nor Beam can read here, naming the setting."""
    scheme = scheme_of(uri)
    if scheme and scheme not in REMOTE_SCHEMES:
        raise UserError(f"{what} {uri} uses the scheme {scheme}://, which this pipeline cannot read or write; "
                        f"use a local path, gs://, s3:// or minio://.")
    if scheme and not bucket_and_key(uri)[0]:
        raise UserError(f"{what} {uri} names no bucket; write {scheme}://BUCKET/PATH.")


def s3_endpoint(env: Optional[MutableMapping[str, str]] = None) -> Optional[str]:
    """The configured S3 endpoint with its scheme, or None (then boto3/TF use AWS's own)."""
    env = os.environ if env is None else env
    endpoint = env.get("S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return None
    if "://" not in endpoint:
        https = env.get("S3_USE_HTTPS", "1").lower() in _TRUE
        endpoint = ("https://" if https else "http://") + endpoint
    return endpoint.rstrip("/")


def s3_environment(env: Optional[MutableMapping[str, str]] = None) -> dict:
    """The variables to add so TensorFlow (tensorflow-io) and boto3 (Beam) reach the same endpoint."""
    env = os.environ if env is None else env
    added = {}
    endpoint = s3_endpoint(env)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    if endpoint:
        added["S3_ENDPOINT"] = endpoint                      # tensorflow-io: scheme included
        added["AWS_ENDPOINT_URL_S3"] = endpoint              # boto3 >= 1.28, so Beam's S3 filesystem
        added["S3_USE_HTTPS"] = "1" if endpoint.startswith("https://") else "0"
    added["S3_DISABLE_MULTI_PART_DOWNLOAD"] = env.get("S3_DISABLE_MULTI_PART_DOWNLOAD", "1")  # see module doc
    added["AWS_REGION"] = region
    added["AWS_DEFAULT_REGION"] = region                     # what boto3 reads
    if env.get("S3_VERIFY_SSL", "1").lower() not in _TRUE:
        added["S3_VERIFY_SSL"] = "0"
    return {key: value for key, value in added.items() if env.get(key) != value}


_enabled = False


def enable_s3() -> None:
    """Makes s3:// readable by TensorFlow and Beam in this process (and the processes it starts)."""
    global _enabled  # pylint: disable=global-statement
    if _enabled:
        return
    os.environ.update(s3_environment())
    import tensorflow_io  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    _enabled = True


def s3_enabled() -> bool:
    return _enabled


def enable_for(uris: Iterable[Optional[str]]) -> bool:
    """enable_s3() when any of the URIs is on S3 or an S3 endpoint is configured; True if enabled."""
    if any(is_s3(uri) for uri in uris) or s3_endpoint():
        enable_s3()
        return True
    return False


def loadable_path(uri: str) -> str:
    """Where TensorFlow can load the SavedModel (or Hub module) at `uri` from: `uri` itself when
    it is not on S3, else a local copy kept until the process exits (see the module doc)."""
    if not is_s3(uri):
        return uri
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    enable_s3()
    source = normalize(uri).rstrip("/")
    scratch = tempfile.mkdtemp(prefix="imdb-s3-model-")
    atexit.register(shutil.rmtree, scratch, True)
    for folder, _, files in tf.io.gfile.walk(source):
        target = os.path.join(scratch, folder[len(source):].lstrip("/"))
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(folder.rstrip("/") + "/" + name, os.path.join(target, name), overwrite=True)
    log.debug("copied %s to %s to load it", uri, scratch)
    return scratch


def exit_process(code: int) -> None:
    """Ends the process with `code`, also after S3 use.

    Once the AWS SDK inside tensorflow-io has run, its static destructors abort the interpreter
    at exit ("pure virtual method called", exit code 134) even when everything succeeded. So the
    atexit handlers run as usual, the streams are flushed, and the process leaves before C++
    teardown. Without S3 this is plain sys.exit.
    """
    if not _enabled:
        sys.exit(code)
    atexit._run_exitfuncs()  # pylint: disable=protected-access
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)  # pylint: disable=protected-access


def s3_client(env: Optional[MutableMapping[str, str]] = None, **config: Any):
    """A boto3 S3 client from the standard variables of `env` (default: this process's), the same
    endpoint, region, keys and certificate check TensorFlow gets; `config`: botocore Config options."""
    import boto3  # pylint: disable=import-outside-toplevel
    from botocore.config import Config  # pylint: disable=import-outside-toplevel

    env = os.environ if env is None else env
    settings = {**env, **s3_environment(env)}
    # A new session each time: the default one caches the keys it first found in the environment.
    return boto3.session.Session().client(
        "s3", endpoint_url=s3_endpoint(settings), region_name=settings["AWS_REGION"],
        verify=settings.get("S3_VERIFY_SSL", "1").lower() in _TRUE,
        aws_access_key_id=settings.get("AWS_ACCESS_KEY_ID"), aws_secret_access_key=settings.get("AWS_SECRET_ACCESS_KEY"),
        config=Config(**config) if config else None)


def check_location(uri: str, what: str, must_exist: bool = False) -> None:
    """Pre-flight: one sentence naming the URI and what to set, before any component starts.

    Local paths and gs:// are only checked for existence when `must_exist` (GCS credentials are
    the environment's, found by TensorFlow itself); s3:// and minio:// are probed with one
    HeadBucket request, which tells an unreachable endpoint, refused keys and a missing bucket apart.
    """
    check_scheme(uri, what)
    if is_s3(uri):
        _check_s3(uri, what)
    if must_exist:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        if not tf.io.gfile.exists(normalize(uri)):
            raise UserError(f"{what} {uri} does not exist.")


def _check_s3(uri: str, what: str) -> None:
    from botocore import exceptions  # pylint: disable=import-outside-toplevel

    endpoint = s3_endpoint()
    if scheme_of(uri) == "minio" and not endpoint:
        raise UserError(f"{what} {uri} is on MinIO, but no S3 endpoint is configured: set S3_ENDPOINT "
                        f"(e.g. http://minio-service.kubeflow:9000) and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.")
    bucket = bucket_and_key(uri)[0]
    where = f"the S3 endpoint {endpoint}" if endpoint else "AWS S3 (no S3_ENDPOINT set)"
    try:
        s3_client(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}).head_bucket(Bucket=bucket)
    except exceptions.NoCredentialsError:
        raise UserError(f"{what} {uri}: no S3 credentials found; set AWS_ACCESS_KEY_ID and "
                        f"AWS_SECRET_ACCESS_KEY for {where}.") from None
    except (exceptions.EndpointConnectionError, exceptions.ConnectTimeoutError, exceptions.ReadTimeoutError) as error:
        raise UserError(f"{what} {uri}: cannot reach {where} ({type(error).__name__}); set S3_ENDPOINT to the "
                        f"server's URL with its scheme (e.g. http://minio-service.kubeflow:9000) and check it is up.") from None
    except exceptions.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise UserError(f"{what} {uri}: the bucket {bucket} does not exist at {where}; create it "
                            f"(e.g. `aws --endpoint-url {endpoint or 'URL'} s3 mb s3://{bucket}`) or fix the URI.") from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise UserError(f"{what} {uri}: {where} refused the credentials for bucket {bucket}; check "
                            f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (on KFP: the secret mapped at compile).") from None
        raise UserError(f"{what} {uri}: {where} answered {code or error} for bucket {bucket}.") from None


def preflight(locations: Dict[str, Optional[str]], must_exist: Iterable[str] = ()) -> None:
    """Enables S3 when needed, then checks each named location ({"--data": uri, ...}) as
    `check_location` does; `must_exist` names the ones that must already be there."""
    must_exist = set(must_exist)
    given = {what: uri for what, uri in locations.items() if uri}
    enable_for(given.values())
    for what, uri in given.items():
        check_location(uri, what, must_exist=what in must_exist)
