"""`compile`, `submit` and `schedule`: the Kubeflow commands of `imdb-pipeline`.

Part of the command line, the one layer that knows every other: it builds the pipeline from
PipelineConfig (`pipeline.pipeline`) and hands it to `kubeflow/`, which knows TFX and KFP but not
the project's configuration. `add_commands(subparsers)` adds the commands to the CLI's argparse
subparsers; each sets `handler`, which takes the parsed args and returns an exit code.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List

from kubeflow import compiler, submit
from kubeflow.settings import DEFAULT_S3_SECRET, KubeflowSettings, stock_pipeline_root
from models import storage
from models.errors import UserError
from pipeline.configs import SCHEMA_DIR, PipelineConfig, load_config_file

DEFAULT_EXPERIMENT = "imdb-sentiment"
# The tasks sized by PipelineConfig's <id>_cpu / <id>_memory (TFX's default node ids).
SIZED_TASKS = {"Transform": "transform", "Trainer": "trainer"}


def add_commands(subparsers) -> None:
    compile_ = subparsers.add_parser("compile", help="compile the pipeline to a KFP v2 YAML for kfp or vertex")
    compile_.add_argument("--target", choices=("kfp", "vertex"), required=True,
                          help="kfp: open-source Kubeflow Pipelines; vertex: Vertex AI Pipelines")
    compile_.add_argument("--image", required=True, help="image built from kubeflow/Dockerfile, as the cluster pulls it")
    compile_.add_argument("--output", help="YAML to write (default imdb-sentiment-<target>.yaml)")
    compile_.add_argument("--config", help="JSON or YAML file of PipelineConfig settings; flags override it")
    compile_.add_argument("--data", dest="data_root",
                          help="aclImdb folder or CSV on object storage (gs://..., or s3:// / minio:// "
                               "with --s3-endpoint)")
    compile_.add_argument("--serving-dir", help="where blessed models are pushed, on object storage")
    compile_.add_argument("--s3-endpoint", metavar="URL",
                          help="kfp: S3-compatible storage every task uses, http(s)://HOST[:PORT] without credentials "
                               "(stock KFP: http://minio-service.kubeflow:9000)")
    compile_.add_argument("--s3-secret", metavar="NAME",
                          help=f"kfp: Kubernetes secret with keys accesskey/secretkey, given to the tasks as "
                               f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (default: {DEFAULT_S3_SECRET})")
    compile_.add_argument("--s3-region", metavar="REGION",
                          help=f"kfp: region for the S3 endpoint (default: {storage.DEFAULT_REGION})")
    compile_.add_argument("--s3-no-verify", action="store_true",
                          help="kfp: TensorFlow does not check the endpoint's TLS certificate (self-signed MinIO); "
                               "Beam's S3 filesystem cannot skip it: prefer --s3-ca-bundle")
    compile_.add_argument("--s3-ca-bundle", metavar="PATH_IN_POD",
                          help="kfp: absolute path, inside the pods (e.g. a mounted ConfigMap), of the CA bundle that "
                               "signed the endpoint's certificate, for TensorFlow, boto3 (Beam) and requests; it "
                               "replaces their default roots, so include public CAs if tasks also reach public https")
    compile_.add_argument("--beam-arg", dest="beam_args", action="append",
                          help="Beam option for every component, written --beam-arg=--runner=DataflowRunner (repeatable)")
    compile_.add_argument("--local-paths", action="store_true",
                          help="allow paths on this machine and use this checkout's schema: only for trying the "
                               "file with python -m testing.kfp_harness")
    compile_.set_defaults(handler=command_compile)

    for name, helptext in (("submit", "start a run of a compiled pipeline"),
                           ("schedule", "create a recurring run of a compiled pipeline")):
        command = subparsers.add_parser(name, help=helptext)
        command.add_argument("package", help="the compiled .yaml")
        command.add_argument("--target", choices=("kfp", "vertex"), default="kfp")
        command.add_argument("--pipeline-root", required=True,
                             help=f"object storage for run outputs: stock KFP {stock_pipeline_root()} (multi-user: "
                                  f"{stock_pipeline_root('NAMESPACE')}), or gs://BUCKET/pipeline_root")
        command.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                             help="pipeline parameter (repeatable; VALUE is JSON when it parses as JSON)")
        command.add_argument("--service-account", help="KFP: Kubernetes service account; Vertex: GCP service account")
        command.add_argument("--host", help="KFP API endpoint (default $KF_PIPELINES_ENDPOINT)")
        command.add_argument("--namespace", help="KFP namespace (multi-user deployments)")
        command.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="KFP experiment (created if missing)")
        command.add_argument("--project", help="Vertex: GCP project")
        command.add_argument("--region", help="Vertex: region, e.g. us-central1")
        command.add_argument("--name", help="run or schedule name (default: pipeline name and time)")
        command.add_argument("--insecure", action="store_true",
                             help="KFP: allow sending a token to an http:// endpoint beyond loopback, e.g. in-cluster "
                                  "http://ml-pipeline.kubeflow:8888 (default: https only)")
        if name == "schedule":
            command.add_argument("--cron", required=True,
                                 help="KFP: six fields, seconds first ('0 0 2 * * *' = 02:00 daily); "
                                      "Vertex: five fields, optionally 'TZ=Europe/Berlin 0 2 * * *'")
            command.add_argument("--max-concurrency", type=int, default=1, help="runs at once (KFP: 1-10; default 1)")
            command.add_argument("--catchup", action="store_true",
                                 help="KFP: start the runs missed while paused (default: skip them)")
            command.set_defaults(handler=command_schedule)
        else:
            command.set_defaults(handler=command_submit)


def parse_params(pairs: List[str]) -> Dict[str, Any]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--param takes KEY=VALUE, not {pair!r}.")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _config(args: argparse.Namespace) -> PipelineConfig:
    values: Dict[str, Any] = load_config_file(args.config) if args.config else {}
    for name in ("data_root", "serving_dir", "beam_args"):
        if getattr(args, name):
            values[name] = getattr(args, name)
    return PipelineConfig.from_dict(values)


def spec_for_config(config: PipelineConfig, settings: KubeflowSettings) -> Dict[str, Any]:
    """The checked PipelineSpec of the one pipeline definition for settings.target."""
    from pipeline.pipeline import create_pipeline, uncached_node_ids  # pylint: disable=import-outside-toplevel  (TFX: seconds)

    compiler.check_locations({"data_root": config.data_root, "serving_dir": config.resolved_serving_dir,
                              "pretrained_embeddings": config.pretrained_embeddings,
                              "hub_handle": config.hub_handle}, settings, web=("hub_handle",))
    if config.schema_dir == SCHEMA_DIR:  # the tasks read the curated schema at its place in the image
        config = config.replace(schema_dir=settings.schema_dir)
    pipeline = create_pipeline(config, target=settings.target)
    resources = {task_id: compiler.container_resources(getattr(config, f"{prefix}_cpu"),
                                                       getattr(config, f"{prefix}_memory"))
                 for task_id, prefix in SIZED_TASKS.items()}
    return compiler.pipeline_spec(pipeline, settings, uncached_node_ids(config, settings.target), resources)


def compile_config(config: PipelineConfig, settings: KubeflowSettings) -> str:
    """Writes the target's YAML to settings.output and returns its path: the PipelineSpec, then,
    with an S3 endpoint, the Kubernetes platform config that maps the secret's keys."""
    spec = spec_for_config(config, settings)
    return compiler.write_spec(spec, settings, compiler.platform_spec(spec, settings))


def _s3_settings(args: argparse.Namespace) -> Dict[str, Any]:
    extras = [flag for flag, given in (("--s3-secret", args.s3_secret), ("--s3-region", args.s3_region),
                                       ("--s3-no-verify", args.s3_no_verify), ("--s3-ca-bundle", args.s3_ca_bundle))
              if given]
    if not args.s3_endpoint:
        if extras:
            raise UserError(f"{', '.join(extras)} only apply with --s3-endpoint URL.")
        return {}
    values: Dict[str, Any] = {"s3_endpoint": args.s3_endpoint, "s3_verify_ssl": not args.s3_no_verify}
    if args.s3_secret:
        values["s3_secret"] = args.s3_secret
    if args.s3_region:
        values["s3_region"] = args.s3_region
    if args.s3_ca_bundle:
        values["s3_ca_bundle"] = args.s3_ca_bundle
    return values


def command_compile(args: argparse.Namespace) -> int:
    local = {"require_object_storage": False, "schema_dir": SCHEMA_DIR} if args.local_paths else {}
    settings = KubeflowSettings(target=args.target, image=args.image,
                                output=args.output or f"imdb-sentiment-{args.target}.yaml", **local,
                                **_s3_settings(args))
    path = compile_config(_config(args), settings)
    if args.s3_no_verify:
        print("Note: --s3-no-verify reaches TensorFlow only; Beam's S3 filesystem (boto3) still checks the "
              "certificate, so if a Beam step reads the bucket, give the pods the CA with --s3-ca-bundle instead.",
              file=sys.stderr)
    root = stock_pipeline_root() if settings.s3_endpoint else "gs://BUCKET/pipeline_root"
    multi_user = (f" (multi-user: --namespace NAMESPACE --pipeline-root {stock_pipeline_root('NAMESPACE')})"
                  if settings.s3_endpoint else "")
    print(f"Wrote {path} ({args.target}, image {args.image}). Next: imdb-pipeline submit {path} "
          f"--target {args.target} --pipeline-root {root}{multi_user} ...")
    return 0


def _name(args: argparse.Namespace, kind: str) -> str:
    return args.name or f"imdb-sentiment-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _vertex_job(args: argparse.Namespace, kind: str):
    return submit.vertex_job(args.package, args.pipeline_root, args.project, args.region, _name(args, kind),
                             params=parse_params(args.param))


def _kfp_client(args: argparse.Namespace):
    submit.check_package(args.package, "kfp", args.pipeline_root, args.namespace)  # before any request
    warning = submit.pipeline_root_warning(args.pipeline_root, args.namespace)
    if warning:
        print(warning, file=sys.stderr)
    return submit.kfp_client(args.host, args.namespace, insecure=args.insecure)


def command_submit(args: argparse.Namespace) -> int:
    if args.target == "vertex":
        print(f"Submitted Vertex AI pipeline job {submit.submit_vertex(_vertex_job(args, 'run'), args.service_account)}")
        return 0
    run_id = submit.submit_kfp(args.package, args.pipeline_root, args.host, args.experiment, _name(args, "run"),
                               namespace=args.namespace, params=parse_params(args.param),
                               service_account=args.service_account, client=_kfp_client(args))
    print(f"Submitted KFP run {run_id} in experiment {args.experiment}")
    return 0


def command_schedule(args: argparse.Namespace) -> int:
    if args.target == "vertex":
        name = submit.schedule_vertex(_vertex_job(args, "schedule"), args.cron, _name(args, "schedule"),
                                      max_concurrency=args.max_concurrency, service_account=args.service_account)
        print(f"Created Vertex AI schedule {name} ({args.cron})")
        return 0
    job_id = submit.schedule_kfp(args.package, args.pipeline_root, args.host, args.experiment, _name(args, "schedule"),
                                 args.cron, max_concurrency=args.max_concurrency, catchup=args.catchup,
                                 namespace=args.namespace, params=parse_params(args.param),
                                 service_account=args.service_account, client=_kfp_client(args))
    print(f"Created KFP recurring run {job_id} ({args.cron}, at most {args.max_concurrency} at once, "
          f"{'catching up' if args.catchup else 'no catch-up'})")
    return 0
