"""Artifact types of the project's own components."""
from tfx.types.artifact import Artifact


class IngestionReport(Artifact):
    """JSON report of ImdbExampleGen: examples per split, rejected files and why."""

    TYPE_NAME = "ImdbIngestionReport"
