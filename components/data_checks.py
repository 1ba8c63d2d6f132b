"""Checks on a data refresh that the refresh itself cannot fool, over TFDV statistics.

ExampleValidator compares the data with the curated schema only; a refresh with a single label,
or one whose eval split is carved from the same skewed data, passes it and then blesses a model
that agrees with its own mistakes. These checks add: per-split size and label balance, and drift
of the label and review-length distributions from the data the served model was trained on
(TFDV's L-infinity drift comparator; the reference statistics travel with each pushed version).
Each finding is one sentence naming the setting that would let it through.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components.serving_dir import RELEASE_RELPATHS
from models import features

LENGTH_BUCKET = "length_bucket"
# Where a pushed version keeps the statistics of its training data (TF Serving ignores assets.extra/).
REFERENCE_STATISTICS = RELEASE_RELPATHS[1]


@dataclasses.dataclass(frozen=True)
class DataLimits:
    min_train_examples: int
    min_eval_examples: int
    min_label_fraction: float
    label_drift_threshold: float
    length_drift_threshold: float


def _feature(stats: statistics_pb2.DatasetFeatureStatisticsList, name: str):
    for feature in stats.datasets[0].features:
        if (feature.path.step and feature.path.step[0] == name) or feature.name == name:
            return feature
    return None


def positive_fraction(stats: statistics_pb2.DatasetFeatureStatisticsList) -> Optional[float]:
    """Share of label-1 reviews (None when the split has no labels). The schema makes the label a
    category, so its counts are top values; without the schema, its mean is the same share."""
    label = _feature(stats, features.LABEL)
    if label is None:
        return None
    if label.HasField("string_stats"):
        counts = {top.value: top.frequency for top in label.string_stats.top_values}
        total = sum(counts.values())
        return counts.get("1", 0.0) / total if total else None
    return float(label.num_stats.mean) if label.num_stats.common_stats.num_non_missing else None


def size_and_balance(split: str, stats: statistics_pb2.DatasetFeatureStatisticsList,
                     limits: DataLimits) -> List[str]:
    """Findings about one split's size and label balance (train and eval are checked)."""
    count = int(stats.datasets[0].num_examples)
    minimum = {"train": limits.min_train_examples, "eval": limits.min_eval_examples}.get(split)
    found = []
    if minimum is not None and count < minimum:
        found.append(f"the {split} split has {count} reviews, fewer than min_{split}_examples {minimum} "
                     f"(set --min-{split}-examples lower if that is intended)")
    share = positive_fraction(stats)
    if share is not None and count:
        smaller, which = min((share, "positive"), (1.0 - share, "negative"))
        if smaller < limits.min_label_fraction:
            found.append(f"only {smaller:.1%} of the {split} split's {count} reviews are {which} (fewer than "
                         f"min_label_fraction {limits.min_label_fraction:.0%}): a one-sided refresh would bless a "
                         "model that agrees with its own skew (set --min-label-fraction lower if that is intended)")
    return found


def _with_drift_comparators(schema: schema_pb2.Schema, limits: DataLimits) -> schema_pb2.Schema:
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    label = tfdv.get_feature(schema, features.LABEL)
    label.int_domain.is_categorical = True  # a 0/1 label: compare the two shares, not a histogram
    label.drift_comparator.infinity_norm.threshold = limits.label_drift_threshold
    tfdv.get_feature(schema, LENGTH_BUCKET).drift_comparator.infinity_norm.threshold = limits.length_drift_threshold
    return schema


def drift(train: statistics_pb2.DatasetFeatureStatisticsList,
          reference: statistics_pb2.DatasetFeatureStatisticsList,
          schema: schema_pb2.Schema, limits: DataLimits) -> List[str]:
    """Findings where the train split's label or length distribution moved from the reference
    (the served model's training data) by more than the thresholds, as TFDV measures it."""
    anomalies = tfdv.validate_statistics(train, _with_drift_comparators(schema, limits),
                                         previous_statistics=reference)
    setting = {features.LABEL: "label_drift_threshold", LENGTH_BUCKET: "length_drift_threshold"}
    found = []
    for info in anomalies.drift_skew_info:
        name = info.path.step[0]
        for measurement in info.drift_measurements:
            if measurement.value > measurement.threshold:
                found.append(f"the {name.replace('_', ' ')} distribution of the train split moved by "
                             f"{measurement.value:.3f} (L-infinity) from the served model's training data, more "
                             f"than {setting.get(name, 'its threshold')} {measurement.threshold:.3f} (set "
                             f"--{setting.get(name, '').replace('_', '-')} higher if the change is intended)")
    return found
