"""Settings of a Kubeflow compile that PipelineConfig does not hold: where, and in which image."""
from __future__ import annotations

import dataclasses

from models.errors import UserError

TARGETS = ("kfp", "vertex")  # open-source KFP v2 backend, Vertex AI Pipelines
# Where kubeflow/Dockerfile puts the project source (and so the curated schema) in the image.
IMAGE_SOURCE_DIR = "/opt/imdb-sentiment"
IMAGE_SCHEMA_DIR = IMAGE_SOURCE_DIR + "/pipeline/configs"
# The container command of every task: the shim that fixes tensorflow/tfx#7768, then TFX's entrypoint.
ENTRYPOINT = ("python", "-m", "kubeflow.entrypoint")
PACKAGE_SUFFIXES = (".yaml", ".yml")  # what the kfp client uploads (besides archives of one)


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
        if problems:
            raise UserError("Invalid Kubeflow settings: " + "; ".join(problems) + ".")


def is_remote(path: str) -> bool:
    """An object-store or web URI (gs://, s3://, minio://, https://), not a path on this machine."""
    return "://" in path
