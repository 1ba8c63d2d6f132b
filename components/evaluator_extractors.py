"""The Evaluator's extractors (its `module_path`): TFMA's defaults, fed batches of EVAL_BATCH_ROWS.

TFXIO hands TFMA the eval split in batches sized by Beam's adaptive BatchElements, which starts
at one review and grows towards a one-second batch: about 60 reviews a batch on the 2,460-review
eval split. The examples signature scores a batch in length-sorted sub-batches, each padded to its
longest review, and a GRU runs every padded step; the fewer reviews a batch holds, the less alike
its sub-batches' lengths are. Regrouping into batches of up to 1,000 (tfx_bsl's own cap
for adaptive batches) before the default extractors cuts the padding the models run through:
the wide-and-deep model scores the eval split in 2.8 s in batches of 1,000 against 4.9 s in
batches of 64 (bench/signature.py). The metrics are the same to the last digit (BENCHMARKS.md,
issue 10).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List

import apache_beam as beam
import pyarrow as pa
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants as tfma_constants

EVAL_BATCH_ROWS = 1000
STAGE_NAME = "RegroupIntoFullBatches"


def _rows(extracts: Dict[str, Any]) -> int:
    return extracts[tfma_constants.ARROW_RECORD_BATCH_KEY].num_rows


def _one_batch(group: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The group's record batches as one ([] for the empty group BatchElements emits before an
    input batch larger than the target)."""
    group = list(group)
    if not group:
        return []
    extra = {key for extracts in group for key in extracts} - {tfma_constants.ARROW_RECORD_BATCH_KEY}
    if extra:  # this stage runs first, on inputs only; anything else would be dropped here
        raise ValueError(f"{STAGE_NAME} regroups input record batches, but its inputs also hold {sorted(extra)}")
    batches = [extracts[tfma_constants.ARROW_RECORD_BATCH_KEY] for extracts in group]
    if len(batches) == 1:
        return [{tfma_constants.ARROW_RECORD_BATCH_KEY: batches[0]}]
    # promote: without a schema TFXIO leaves out a feature no review of a batch has
    table = pa.concat_tables([pa.Table.from_batches([batch]) for batch in batches], promote=True).combine_chunks()
    return [{tfma_constants.ARROW_RECORD_BATCH_KEY: table.to_batches(max_chunksize=table.num_rows)[0]}]


@beam.ptransform_fn
@beam.typehints.with_input_types(tfma.types.Extracts)
@beam.typehints.with_output_types(tfma.types.Extracts)
def _RegroupIntoFullBatches(extracts: beam.PCollection, rows: int) -> beam.PCollection:  # pylint: disable=invalid-name
    """Input batches (Arrow record batches, nothing extracted yet) concatenated until `rows`."""
    return (extracts
            | "Group" >> beam.BatchElements(min_batch_size=rows, max_batch_size=rows, element_size_fn=_rows)
            | "Concatenate" >> beam.FlatMap(_one_batch))


def regroup_extractor(rows: int = EVAL_BATCH_ROWS) -> tfma.extractors.Extractor:
    regroup = _RegroupIntoFullBatches(rows)  # pylint: disable=no-value-for-parameter  (ptransform_fn)
    return tfma.extractors.Extractor(stage_name=STAGE_NAME, ptransform=regroup)


def custom_extractors(eval_shared_model, eval_config, tensor_adapter_config) -> List[tfma.extractors.Extractor]:
    """What TFX's Evaluator executor calls when given this module."""
    return [regroup_extractor()] + tfma.default_extractors(
        eval_shared_model=eval_shared_model, eval_config=eval_config, tensor_adapter_config=tensor_adapter_config)
