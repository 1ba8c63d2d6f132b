"""Checks a skewed refresh cannot pass: split sizes, label balance, drift from the served model's
training data, on real TFDV statistics computed from small frames the tests make."""
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from components import data_checks
from pipeline.configs import SCHEMA_DIR

LIMITS = data_checks.DataLimits(min_train_examples=50, min_eval_examples=10, min_label_fraction=0.2,
                                label_drift_threshold=0.1, length_drift_threshold=0.1)


@pytest.fixture(scope="module")
def schema():
    with open(f"{SCHEMA_DIR}/schema.pbtxt", encoding="utf-8") as handle:
        return text_format.Parse(handle.read(), schema_pb2.Schema())


def stats(schema, positives, negatives, short=None):
    """Statistics of a split with that many labels; `short` of the reviews in the 000-099 bucket."""
    total = positives + negatives
    short = total if short is None else short
    frame = pd.DataFrame({
        "label": [1] * positives + [0] * negatives,
        "length_bucket": ["000-099"] * short + ["200-399"] * (total - short),
    })
    return tfdv.generate_statistics_from_dataframe(frame, tfdv.StatsOptions(schema=schema))


def test_balanced_split_of_enough_reviews_passes(schema):
    assert data_checks.size_and_balance("train", stats(schema, 50, 50), LIMITS) == []
    assert data_checks.positive_fraction(stats(schema, 30, 70)) == pytest.approx(0.3)


def test_a_one_label_train_split_is_named(schema):
    [finding] = data_checks.size_and_balance("train", stats(schema, 100, 0), LIMITS)
    assert "only 0.0% of the train split's 100 reviews are negative" in finding and "--min-label-fraction" in finding


def test_a_small_eval_split_is_named(schema):
    [finding] = data_checks.size_and_balance("eval", stats(schema, 4, 4), LIMITS)
    assert "the eval split has 8 reviews, fewer than min_eval_examples 10" in finding


def test_label_drift_from_the_served_data_is_measured_by_tfdv(schema):
    reference = stats(schema, 50, 50)
    assert data_checks.drift(stats(schema, 52, 48), reference, schema, LIMITS) == []
    [finding] = data_checks.drift(stats(schema, 80, 20), reference, schema, LIMITS)
    assert finding.startswith("the label distribution of the train split moved by 0.300")
    assert "label_drift_threshold 0.100" in finding


def test_length_drift_is_measured_too(schema):
    reference = stats(schema, 50, 50, short=100)
    [finding] = data_checks.drift(stats(schema, 50, 50, short=40), reference, schema, LIMITS)
    assert "length bucket distribution" in finding and "moved by 0.600" in finding
