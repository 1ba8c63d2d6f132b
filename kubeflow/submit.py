"""Sends a compiled pipeline to a backend: a run now, or a recurring run.

Open-source KFP goes through `kfp.Client` (API v2beta1); Vertex AI through
`google.cloud.aiplatform.PipelineJob`. Credentials come from the environment only, never from
flags or the compiled file:
  KFP     KF_PIPELINES_ENDPOINT (host, if --host is not given), KF_PIPELINES_TOKEN (a bearer
          token), KF_PIPELINES_SA_TOKEN_PATH (a projected service-account token file), or the
          kfp client's own IAP variables (KF_PIPELINES_IAP_OAUTH2_CLIENT_ID, ...).
  Vertex  Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS or gcloud auth).
The pipeline root is a submission setting because the compiled YAML is a bare PipelineSpec.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from typing import Any, Dict, Iterator, Optional
from urllib.parse import urlsplit

from kubeflow import cron, spec_check
from kubeflow.settings import NAMESPACE_PREFIXES, PACKAGE_SUFFIXES, STOCK_BUCKET, is_remote, stock_pipeline_root
from models import storage
from models.errors import UserError

TOKEN_ENV = "KF_PIPELINES_TOKEN"
SA_TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"


def root_hint(target: str, namespace: Optional[str] = None) -> str:
    """The pipeline root to suggest: a stock KFP install's own (its profile's, given a namespace),
    or a GCS folder (GKE, Vertex)."""
    if target == "vertex":
        return "gs://BUCKET/pipeline_root"
    return f"{stock_pipeline_root(namespace)} (a stock install) or gs://BUCKET/pipeline_root"


def check_package(package: str, target: str, pipeline_root: Optional[str], namespace: Optional[str] = None) -> None:
    """The checks the backend would make, before any request: a readable 2.1 spec and a root."""
    if not package.endswith(PACKAGE_SUFFIXES):
        raise UserError(f"The pipeline file {package} must be the compiled .yaml (the kfp client uploads only "
                        ".yaml/.yml or archives of one).")
    spec_check.raise_for_problems(spec_check.load_spec_file(package), target)
    if not pipeline_root:
        raise UserError(f"A pipeline root is needed at submission (--pipeline-root {root_hint(target, namespace)}): "
                        "the compiled file does not carry one.")
    if not is_remote(pipeline_root):
        raise UserError(f"The pipeline root {pipeline_root} is a path on this machine; the pipeline's pods need "
                        f"object storage such as {root_hint(target, namespace)}.")


def pipeline_root_warning(pipeline_root: str, namespace: Optional[str]) -> Optional[str]:
    """One sentence when a root in a stock install's bucket lies outside what a namespace may use.

    A multi-user install lets each namespace's pods reach only some prefixes of the bucket (from
    KFP 2.15 a SeaweedFS policy per namespace); a root elsewhere fails only once a task writes.
    A warning, not a refusal: the bucket's policy is the cluster's to set. `v2/artifacts` passes
    too, the root of a single-user install (where --namespace is harmless)."""
    if not namespace or storage.scheme_of(pipeline_root) not in ("minio", "s3"):
        return None
    bucket, _, key = pipeline_root.split("://", 1)[1].partition("/")
    allowed = [prefix.format(ns=namespace) for prefix in NAMESPACE_PREFIXES]
    if bucket != STOCK_BUCKET or any(f"{key.strip('/')}/".startswith(prefix) for prefix in allowed + ["v2/artifacts/"]):
        return None
    return (f"Warning: on a multi-user KFP install the namespace {namespace} may use only "
            f"{', '.join(allowed[:-1])} or {allowed[-1]} in the bucket {STOCK_BUCKET} (its profile's root is "
            f"{stock_pipeline_root(namespace)}), so the pipeline root {pipeline_root} may be refused when a "
            "task writes.")


def check_token_transport(host: str, insecure: bool = False) -> None:
    """Refuses, before any request, to send a token from the environment over plain http beyond
    this machine. Loopback passes (a kubectl port-forward: the token does not leave the machine,
    the tunnel is TLS); a host without scheme passes (kfp.Client then uses https)."""
    token_env = TOKEN_ENV if os.environ.get(TOKEN_ENV) else SA_TOKEN_PATH_ENV if os.environ.get(SA_TOKEN_PATH_ENV) else None
    parts = urlsplit(host)
    if not token_env or insecure or parts.scheme.lower() != "http" or _is_loopback(parts.hostname or ""):
        return
    raise UserError(f"Refusing to send the KFP token from {token_env} to {host} over plain http: pass --insecure "
                    "if this is a trusted in-cluster endpoint such as http://ml-pipeline.kubeflow:8888, or use an "
                    "https:// endpoint.")


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def kfp_client(host: Optional[str], namespace: Optional[str] = None, insecure: bool = False):
    """A kfp.Client whose credentials come from the environment (see module doc). A token goes over
    plain http only to loopback or with `insecure` (check_token_transport)."""
    host = host or os.environ.get("KF_PIPELINES_ENDPOINT")
    if not host:
        raise UserError("No KFP endpoint: pass --host https://KFP_HOST (or set KF_PIPELINES_ENDPOINT).")
    check_token_transport(host, insecure)
    import kfp  # pylint: disable=import-outside-toplevel
    from kfp.client import ServiceAccountTokenVolumeCredentials  # pylint: disable=import-outside-toplevel

    kwargs: Dict[str, Any] = {"host": host}
    if namespace:
        kwargs["namespace"] = namespace
    if os.environ.get(TOKEN_ENV):
        kwargs["existing_token"] = os.environ[TOKEN_ENV]
    elif os.environ.get(SA_TOKEN_PATH_ENV):
        kwargs["credentials"] = ServiceAccountTokenVolumeCredentials(os.environ[SA_TOKEN_PATH_ENV])
    with _kfp_api("answer the client's health check"):
        return kfp.Client(**kwargs)


@contextlib.contextmanager
def _kfp_api(what: str) -> Iterator[None]:
    """The API server's refusal (or silence) as one sentence instead of a stack trace."""
    from kfp_server_api.exceptions import ApiException  # pylint: disable=import-outside-toplevel
    from urllib3.exceptions import HTTPError  # pylint: disable=import-outside-toplevel

    try:
        yield
    except ApiException as err:
        try:
            detail = json.loads(err.body or "{}").get("error_message") or err.reason
        except (ValueError, AttributeError):
            detail = err.body or err.reason
        raise UserError(f"The KFP API server refused to {what} (HTTP {err.status}): {detail}.") from err
    except HTTPError as err:
        raise UserError(f"Cannot reach the KFP API server to {what}: {err}.") from err


def _experiment_id(client, experiment: str, namespace: Optional[str]) -> str:
    with _kfp_api(f"find or create the experiment {experiment}"):
        return client.create_experiment(name=experiment, namespace=namespace).experiment_id


def submit_kfp(package: str, pipeline_root: str, host: Optional[str], experiment: str, run_name: str,
               namespace: Optional[str] = None, params: Optional[Dict[str, Any]] = None,
               service_account: Optional[str] = None, client=None) -> str:
    """Starts one run; returns its run id."""
    check_package(package, "kfp", pipeline_root, namespace)
    client = client or kfp_client(host, namespace)
    experiment_id = _experiment_id(client, experiment, namespace)
    with _kfp_api("start the run"):
        run = client.run_pipeline(experiment_id=experiment_id, job_name=run_name, pipeline_package_path=package,
                                  params=params or {}, pipeline_root=pipeline_root, service_account=service_account)
    return run.run_id


def schedule_kfp(package: str, pipeline_root: str, host: Optional[str], experiment: str, job_name: str,
                 cron_expression: str, max_concurrency: int = 1, catchup: bool = False,
                 namespace: Optional[str] = None, params: Optional[Dict[str, Any]] = None,
                 service_account: Optional[str] = None, client=None) -> str:
    """Creates a recurring run; returns its id. Missed runs are not caught up unless asked."""
    expression = cron.kfp_cron(cron_expression)
    cron.kfp_max_concurrency(max_concurrency)
    check_package(package, "kfp", pipeline_root, namespace)
    client = client or kfp_client(host, namespace)
    experiment_id = _experiment_id(client, experiment, namespace)
    with _kfp_api("create the recurring run"):
        job = client.create_recurring_run(
            experiment_id=experiment_id, job_name=job_name, cron_expression=expression,
            max_concurrency=max_concurrency, no_catchup=not catchup, pipeline_package_path=package,
            params=params or {}, pipeline_root=pipeline_root, service_account=service_account)
    return job.recurring_run_id


def vertex_job(package: str, pipeline_root: str, project: str, region: str, display_name: str,
               params: Optional[Dict[str, Any]] = None, credentials=None):
    """The Vertex PipelineJob (built locally; nothing is sent until submit or create_schedule)."""
    from google.cloud import aiplatform  # pylint: disable=import-outside-toplevel

    check_package(package, "vertex", pipeline_root)
    if not project or not region:
        raise UserError("Vertex AI needs --project and --region.")
    return aiplatform.PipelineJob(display_name=display_name, template_path=package, pipeline_root=pipeline_root,
                                  parameter_values=params or {}, project=project, location=region,
                                  credentials=credentials)


def submit_vertex(job, service_account: Optional[str] = None) -> str:
    job.submit(service_account=service_account)
    return job.resource_name


def schedule_vertex(job, cron_expression: str, display_name: str, max_concurrency: int = 1,
                    service_account: Optional[str] = None) -> str:
    """A Vertex schedule; Vertex does not back-fill missed runs unless catch-up is enabled."""
    if max_concurrency < 1:
        raise UserError(f"max concurrency must be at least 1, not {max_concurrency}.")
    schedule = job.create_schedule(cron=cron.vertex_cron(cron_expression), display_name=display_name,
                                   max_concurrent_run_count=max_concurrency, service_account=service_account)
    return schedule.resource_name
