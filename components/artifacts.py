"""Artifact types of the project's own components."""
from tfx.types.artifact import Artifact


class IngestionReport(Artifact):
    """JSON report of ImdbExampleGen: examples per split, rejected files and why."""

    # `namespace.Name`: the only form TFX accepts for a custom type in a Kubeflow spec.
    TYPE_NAME = "imdb.IngestionReport"
