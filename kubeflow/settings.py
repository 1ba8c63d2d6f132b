"""Settings of a Kubeflow compile that PipelineConfig does not hold: where, and in which image."""
from __future__ import annotations

import dataclasses
import ipaddress
import posixpath
import re
from typing import Optional
from urllib.parse import urlsplit

from models import storage
from models.errors import UserError

TARGETS = ("kfp", "vertex")  # open-source KFP v2 backend, Vertex AI Pipelines
# Where kubeflow/Dockerfile puts the project source (and so the curated schema) in the image.
IMAGE_SOURCE_DIR = "/opt/imdb-sentiment"
IMAGE_SCHEMA_DIR = IMAGE_SOURCE_DIR + "/pipeline/configs"
# The container command of every task: the shim that fixes tensorflow/tfx#7768, then TFX's entrypoint.
ENTRYPOINT = ("python", "-m", "kubeflow.entrypoint")
PACKAGE_SUFFIXES = (".yaml", ".yml")  # what the kfp client uploads (besides archives of one)
# The secret a stock KFP install keeps its MinIO keys in, and its keys.
DEFAULT_S3_SECRET = "mlpipeline-minio-artifact"
S3_SECRET_KEYS = (("accesskey", "AWS_ACCESS_KEY_ID"), ("secretkey", "AWS_SECRET_ACCESS_KEY"))
# The variables a CA bundle for the S3 endpoint goes into: boto3's (so Beam's S3 filesystem, which
# passes no `verify` unless --s3_verify is given), requests', and tensorflow-io 0.37.1's S3 filesystem
# (aws-sdk-cpp caFile: the name is in the installed libtensorflow_io_plugins.so and in its source).
S3_CA_BUNDLE_ENV = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "S3_CA_FILE")
# The schemes the task shim stages through the KFP launcher's local copies (kubeflow/entrypoint.py).
# On open-source KFP the launcher also downloads gs:// inputs to /gcs/... and uploads outputs from
# there, so gs:// is staged like s3/minio; Vertex has no such launcher, so its specs leave it unset.
STAGED_SCHEMES_ENV = "KFP_STAGED_SCHEMES"
KFP_STAGED_SCHEMES = ("minio", "s3", "gs")
# The ModelBlessing custom property BlessingGate writes, so Vertex's resolver can find this pipeline's
# blessings only (its ML Metadata query otherwise spans the whole project and region).
PIPELINE_NAME_PROPERTY = "pipeline_name"
# A stock KFP install's artifact bucket and default pipeline root; on a multi-user install (Kubeflow
# profiles) each namespace may use only these prefixes of the bucket (the per-namespace policy, SeaweedFS
# from KFP 2.15; the profile controller sets defaultPipelineRoot under private-artifacts/<ns>/).
STOCK_BUCKET = "mlpipeline"
STOCK_PIPELINE_ROOT = f"minio://{STOCK_BUCKET}/v2/artifacts"
NAMESPACE_PREFIXES = ("private-artifacts/{ns}/", "private/{ns}/", "shared/", "artifacts/")
# Kubernetes object names (DNS-1123 subdomain): what a secret may be called.
K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_HOST = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*")
_REGION = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_]{0,63}")
# Kubernetes memory quantities, in bytes per unit; KFP's PipelineSpec counts memory in GB (10^9 bytes).
_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_MEMORY = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?")


@dataclasses.dataclass(frozen=True)
class KubeflowSettings:
    """One compile: which backend, which image, which file; the pipeline itself is PipelineConfig."""

    target: str                     # "kfp" or "vertex"
    image: str                      # built from kubeflow/Dockerfile, pushed to a registry the cluster can pull
    output: str = "imdb-sentiment-pipeline.yaml"
    # Schema folder as the tasks see it: the image's copy unless the config points elsewhere.
    schema_dir: str = IMAGE_SCHEMA_DIR
    # Pods cannot read the compiling machine's disk; only the local harness turns this off.
    require_object_storage: bool = True
    # S3-compatible object storage (MinIO in a stock KFP install), kfp only: http(s)://HOST[:PORT].
    # Every task gets the endpoint as environment and its keys from the Kubernetes secret s3_secret.
    s3_endpoint: Optional[str] = None
    s3_secret: str = DEFAULT_S3_SECRET
    s3_region: str = storage.DEFAULT_REGION
    s3_verify_ssl: bool = True
    # A CA bundle as the pods see it (e.g. mounted from a ConfigMap) for an endpoint with a private CA.
    s3_ca_bundle: Optional[str] = None

    def __post_init__(self) -> None:
        problems = []
        if self.target not in TARGETS:
            problems.append(f"target must be one of {', '.join(TARGETS)}, not {self.target!r}")
        if not self.image or any(c.isspace() for c in self.image):
            problems.append("image must be a container image reference such as "
                            "us-docker.pkg.dev/PROJECT/REPO/imdb-sentiment:TAG")
        if not self.output.endswith(PACKAGE_SUFFIXES):
            problems.append(f"output must end with .yaml or .yml (the KFP client uploads only those or archives), "
                            f"not {self.output!r}")
        if self.s3_endpoint is not None:
            if self.target == "vertex":
                problems.append("an S3 endpoint is for the kfp target only: Vertex AI Pipelines keeps artifacts "
                                "and data on gs://, so put them there and drop --s3-endpoint")
            try:
                object.__setattr__(self, "s3_endpoint", check_endpoint(self.s3_endpoint))
            except UserError as err:
                problems.append(str(err).rstrip("."))
        if self.s3_ca_bundle is not None:
            if not self.s3_endpoint:
                problems.append("an S3 CA bundle needs an S3 endpoint (--s3-endpoint)")
            if not self.s3_verify_ssl:
                problems.append("an S3 CA bundle and skipping certificate checks contradict each other: pass one")
            if not posixpath.isabs(self.s3_ca_bundle) or any(c.isspace() for c in self.s3_ca_bundle):
                problems.append(f"the S3 CA bundle must be an absolute path inside the pod such as "
                                f"/etc/ssl/minio/ca.crt, not {self.s3_ca_bundle!r}")
        if not is_k8s_name(self.s3_secret):
            problems.append(f"the S3 secret name {self.s3_secret!r} is not a Kubernetes name (lower-case "
                            "alphanumerics, '-' and '.', at most 253 characters)")
        if not _REGION.fullmatch(self.s3_region or ""):
            problems.append(f"the S3 region {self.s3_region!r} must be a region name such as us-east-1")
        if problems:
            raise UserError("Invalid Kubeflow settings: " + "; ".join(problems) + ".")


def stock_pipeline_root(namespace: Optional[str] = None) -> str:
    """The pipeline root a stock KFP install uses: with a namespace, the one its profile gets
    (multi-user), which is also where that namespace may write."""
    if namespace:
        return f"minio://{STOCK_BUCKET}/private-artifacts/{namespace}/v2/artifacts"
    return STOCK_PIPELINE_ROOT


def is_k8s_name(name: str) -> bool:
    return bool(name) and len(name) <= 253 and bool(K8S_NAME.fullmatch(name))


def check_endpoint(url: str) -> str:
    """The S3 endpoint as `scheme://host[:port]`, or a UserError saying what is wrong with it.

    Credentials in the URL are refused without repeating the URL: the compiled file and any log
    of the refusal must never hold a key; the tasks read keys from the Kubernetes secret."""
    if "@" in url:
        raise UserError("The S3 endpoint must not hold credentials (user:password@host): they would be written "
                        "into the pipeline file. Give only http(s)://HOST[:PORT]; the tasks read the keys from the "
                        "Kubernetes secret named by --s3-secret.")
    shape = f"The S3 endpoint must be http://HOST[:PORT] or https://HOST[:PORT], not {url!r}"
    if any(c.isspace() for c in url) or "?" in url or "#" in url:
        raise UserError(shape + " (no spaces, query or fragment).")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise UserError(shape + ".")
    if parts.path not in ("", "/"):
        raise UserError(shape + " (no path: the bucket goes into the s3:// locations).")
    try:
        port = parts.port
    except ValueError as err:
        raise UserError(shape + f" ({err}).") from err
    if port == 0 or parts.netloc.endswith(":"):
        raise UserError(shape + " (the port must be 1-65535).")
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.fullmatch(host) or len(host) > 253:
            raise UserError(shape + f" ({host!r} is not a host name or IP address).") from None
    return f"{scheme}://{parts.netloc}"


def memory_gb(quantity: str) -> float:
    """A Kubernetes memory quantity (4Gi, 512Mi, 6G, 1e9 bytes as '1000000000') in GB, KFP's unit."""
    match = _MEMORY.fullmatch(str(quantity).strip())
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"{quantity!r} is not a memory size such as 4Gi, 512Mi or 6G.")
    return float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""] / 10**9


def is_remote(path: str) -> bool:
    """An object-store or web URI (gs://, s3://, minio://, https://), not a path on this machine
    (file:// included)."""
    return bool(storage.scheme_of(path))
