"""DataValidationGate: stops the run before Transform when ExampleValidator found anomalies.

TFX's ExampleValidator only records anomalies; nothing downstream refuses to train on bad data.
This gate reads them and fails with a sentence naming each anomaly (feature, split, what).
"""

import logging
import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies
from tfx.utils import io_utils

from models.errors import UserError

ANOMALIES_FILE = "SchemaDiff.pb"

log = logging.getLogger("imdb.validation")


def describe_anomalies(anomalies: ExampleAnomalies) -> List[str]:
    """One line per anomaly: `split 'eval', feature 'label': <short description> (<detail>)`."""
    found = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies], split), ANOMALIES_FILE)
        report = anomalies_pb2.Anomalies()
        report.ParseFromString(io_utils.read_bytes_file(path))
        for feature, info in sorted(report.anomaly_info.items()):
            detail = "; ".join(reason.description for reason in info.reason) or info.description
            found.append(f"split '{split}', feature '{feature}': {info.short_description} ({detail})")
        if report.HasField("dataset_anomaly_info"):
            info = report.dataset_anomaly_info
            found.append(f"split '{split}', dataset: {info.short_description} ({info.description})")
    return found


@component
def DataValidationGate(anomalies: InputArtifact[ExampleAnomalies]):  # pylint: disable=invalid-name
    problems = describe_anomalies(anomalies)
    if problems:
        raise UserError("The data does not match the schema, so the run stopped before training: "
                        + "; ".join(problems) + ".")
    log.info("no anomalies in any split")
