"""DataValidationGate: stops the run before Transform when the data should not be trained on.

TFX's ExampleValidator only records anomalies; nothing downstream refuses to train on bad data.
This gate reads them, adds the checks a skewed refresh cannot pass (components/data_checks.py:
split sizes, label balance, drift from the served model's training data) and fails with one
sentence per problem, naming the setting that would let it through.
"""

import logging
import os
from typing import List, Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema
from tfx.utils import io_utils

from components import data_checks
from components.serving_dir import newest_complete_version
from models.errors import UserError

ANOMALIES_FILE = "SchemaDiff.pb"
STATISTICS_FILE = "FeatureStats.pb"
SCHEMA_FILE = "schema.pbtxt"

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


def _split_statistics(statistics: ExampleStatistics, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    return tfdv.load_stats_binary(os.path.join(artifact_utils.get_split_uri([statistics], split), STATISTICS_FILE))


def _reference_statistics(serving_dir: str) -> Optional[statistics_pb2.DatasetFeatureStatisticsList]:
    """The training-data statistics of the newest served version, when it carries them."""
    version = newest_complete_version(serving_dir) if serving_dir else None
    path = os.path.join(serving_dir, version, data_checks.REFERENCE_STATISTICS) if version else None
    if not path or not fileio.exists(path):
        log.info("no reference statistics in %s (nothing served yet, or served by an older release): "
                 "drift not checked", serving_dir)
        return None
    return tfdv.load_stats_binary(path)


@component
def DataValidationGate(  # pylint: disable=invalid-name
        anomalies: InputArtifact[ExampleAnomalies], statistics: InputArtifact[ExampleStatistics],
        schema: InputArtifact[Schema], serving_dir: Parameter[str], min_train_examples: Parameter[int],
        min_eval_examples: Parameter[int], min_label_fraction: Parameter[float],
        label_drift_threshold: Parameter[float], length_drift_threshold: Parameter[float]):
    limits = data_checks.DataLimits(min_train_examples, min_eval_examples, min_label_fraction,
                                    label_drift_threshold, length_drift_threshold)
    problems = describe_anomalies(anomalies)
    if problems:
        raise UserError("The data does not match the schema, so the run stopped before training: "
                        + "; ".join(problems) + ".")
    splits = artifact_utils.decode_split_names(statistics.split_names)
    by_split = {split: _split_statistics(statistics, split) for split in ("train", "eval") if split in splits}
    problems = [problem for split, stats in by_split.items()
                for problem in data_checks.size_and_balance(split, stats, limits)]
    reference = _reference_statistics(serving_dir)
    if reference is not None and "train" in by_split:
        schema_proto = io_utils.parse_pbtxt_file(os.path.join(schema.uri, SCHEMA_FILE), schema_pb2.Schema())
        problems += data_checks.drift(by_split["train"], reference, schema_proto, limits)
    if problems:
        raise UserError("The data refresh looks wrong, so the run stopped before training: "
                        + "; ".join(problems) + ".")
    log.info("no anomalies in any split; sizes and label balance within limits%s",
             "; no drift from the served model's training data" if reference is not None else "")
