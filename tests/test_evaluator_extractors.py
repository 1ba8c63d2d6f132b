"""The Evaluator's first extractor: TFXIO's small adaptive batches regrouped into full ones."""
import apache_beam as beam
import pyarrow as pa
import pytest
import tensorflow_model_analysis as tfma
from apache_beam.testing.util import assert_that
from tensorflow_model_analysis import constants

from components import evaluator_extractors
from components.evaluator_extractors import custom_extractors, regroup_extractor


def _batch(first: int, rows: int) -> dict:
    ids = list(range(first, first + rows))
    return {constants.ARROW_RECORD_BATCH_KEY: pa.RecordBatch.from_arrays(
        [pa.array(ids, pa.int64()), pa.array([f"review {i}".encode() for i in ids], pa.binary())], ["id", "text"])}


def _run_regrouped(batches, rows, check):
    """Runs the extractor on `batches` in a real Beam pipeline; `check` gets the output batches
    as dicts of columns (inside the pipeline: a failed assertion fails the run)."""
    extractor = regroup_extractor(rows)
    with beam.Pipeline() as pipeline:
        out = (pipeline | beam.Create(batches, reshuffle=False) | extractor.stage_name >> extractor.ptransform
               | beam.Map(lambda extracts: extracts[constants.ARROW_RECORD_BATCH_KEY].to_pydict()))
        assert_that(out, check)


def test_small_batches_become_full_ones_with_every_row_once():
    sizes = [1, 2, 4, 8, 16, 32, 7, 30]  # how BatchElements ramps up, 100 rows
    starts = [sum(sizes[:i]) for i in range(len(sizes))]

    def check(batches):
        assert all(len(batch["id"]) <= 40 for batch in batches)
        assert len(batches) < len(sizes)
        assert sorted(i for batch in batches for i in batch["id"]) == list(range(100))
        assert all(text == f"review {i}".encode() for batch in batches for i, text in zip(batch["id"], batch["text"]))

    _run_regrouped([_batch(start, size) for start, size in zip(starts, sizes)], 40, check)


def test_a_batch_larger_than_the_target_passes_whole():
    def check(batches):
        assert sorted(len(batch["id"]) for batch in batches) == [3, 50]

    _run_regrouped([_batch(0, 50), _batch(50, 3)], 40, check)


def test_a_feature_absent_from_one_input_batch_is_null_there():
    without_text = {constants.ARROW_RECORD_BATCH_KEY: pa.RecordBatch.from_arrays([pa.array([7, 8], pa.int64())], ["id"])}

    def check(batches):
        assert len(batches) == 1
        assert dict(zip(batches[0]["id"], batches[0]["text"])) == {0: b"review 0", 1: b"review 1", 7: None, 8: None}

    _run_regrouped([_batch(0, 2), without_text], 40, check)


def test_a_failed_check_fails_the_run():  # the checks above run inside the pipeline
    def check(batches):
        assert len(batches) == 99

    with pytest.raises(Exception, match="99|AssertionError|assert"):
        _run_regrouped([_batch(0, 5)], 40, check)


def test_inputs_already_extracted_are_refused_not_dropped():
    with pytest.raises(ValueError, match="features"):
        evaluator_extractors._one_batch([_batch(0, 2), {**_batch(2, 2), "features": {}}])


def test_the_module_gives_tfma_its_default_extractors_after_the_regrouping():
    eval_config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(label_key="label", prediction_key="probability")])
    names = [extractor.stage_name for extractor in custom_extractors(
        eval_shared_model=None, eval_config=eval_config, tensor_adapter_config=None)]
    defaults = [extractor.stage_name for extractor in tfma.default_extractors(eval_config=eval_config)]
    assert names == [evaluator_extractors.STAGE_NAME] + defaults
