"""ImdbExampleGen: ingests the aclImdb folder layout (or CSV) into train/eval/test tf.Examples.

Why a custom component rather than FileBasedExampleGen: the eval split must be carved from the
*train* folder while the test folder stays its own split, review files carry their label in the
folder name and the rating in the file name, and unreadable files must be counted and reported
rather than crash the run or vanish silently.
"""
from __future__ import annotations

import json
import logging
import os
import random
from typing import Any, Dict, List

import apache_beam as beam
from tfx import types
from tfx.components.example_gen.write_split import WriteSplit
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components import imdb_reader
from components.artifacts import IngestionReport
from models.errors import UserError

REPORT_FILE = "ingestion_report.json"
_MAX_LISTED_REJECTS = 50
_ORDER_SEED = 20110619  # ACL 2011, the data set's paper

log = logging.getLogger("imdb.example_gen")


def _read_source(element) -> Any:
    kind, path, label, source_split = element
    if kind == "file":
        yield imdb_reader.read_review_file(path, label, source_split)
    else:
        yield from imdb_reader.read_csv_reviews(path, source_split)


class _RouteRecords(beam.DoFn):
    """Reviews go on keyed by output split; rejects to a side output (nothing is lost)."""

    def __init__(self, eval_percent: int):
        self._eval_percent = eval_percent

    def process(self, record):
        if isinstance(record, imdb_reader.Rejected):
            yield beam.pvalue.TaggedOutput("rejected", {"source": record.source, "reason": record.reason})
        else:
            split = imdb_reader.output_split(record.review_id, record.review_id.split("/")[0], self._eval_percent)
            yield split, imdb_reader.to_example(record)


def _source_elements(layout: imdb_reader.InputLayout) -> List[tuple]:
    """Review files in a fixed pseudo-random order: the folders list all negatives before all
    positives, and Beam's DirectRunner keeps that order, which would hand the Trainer long
    single-label runs. The seed is fixed so the output stays deterministic (and cacheable)."""
    if layout.kind == "csv":
        return [("csv", path, -1, split) for split, path in layout.sources]
    elements = [("file", path, label, split)
                for split, folder in layout.sources
                for path, label in imdb_reader.list_review_files(folder)]
    random.Random(_ORDER_SEED).shuffle(elements)
    return elements


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads every review with Beam, writes Split-{train,eval,test}/ and an ingestion report."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        layout = imdb_reader.detect_layout(exec_properties["input_base"])
        eval_percent = int(exec_properties["eval_percent"])
        examples = artifact_utils.get_single_instance(output_dict["examples"])
        report = artifact_utils.get_single_instance(output_dict["ingestion_report"])
        splits = ["train", "eval"] + (["test"] if any(s == "test" for s, _ in layout.sources) else [])
        examples.split_names = artifact_utils.encode_split_names(splits)
        examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, "tfrecords_gzip")
        sources = _source_elements(layout)
        if layout.kind == "aclimdb" and not sources:
            raise UserError(f"No review files under {exec_properties['input_base']}.")

        counts_prefix = os.path.join(report.uri, "split_counts")
        rejected_path = os.path.join(report.uri, "rejected.jsonl")
        pipeline = self._make_beam_pipeline()
        records = (pipeline
                   | "Sources" >> beam.Create(sources, reshuffle=True)
                   | "Read" >> beam.FlatMap(_read_source)
                   | "Route" >> beam.ParDo(_RouteRecords(eval_percent)).with_outputs("rejected", main="reviews"))
        _ = (records.rejected
             | "RejectedJson" >> beam.Map(json.dumps, sort_keys=True)
             | "WriteRejected" >> beam.io.WriteToText(rejected_path, shard_name_template=""))
        _ = (records.reviews
             | "SplitKey" >> beam.Map(lambda kv: (kv[0], 1))
             | "CountSplits" >> beam.CombinePerKey(sum)
             | "CountJson" >> beam.Map(lambda kv: json.dumps({"split": kv[0], "count": kv[1]}))
             | "WriteCounts" >> beam.io.WriteToText(counts_prefix, shard_name_template="", file_name_suffix=".jsonl"))
        for split in splits:
            _ = (records.reviews
                 | f"Only{split}" >> beam.Filter(lambda kv, s=split: kv[0] == s)
                 | f"Example{split}" >> beam.Map(lambda kv: kv[1])
                 | f"Write{split}" >> WriteSplit(artifact_utils.get_split_uri([examples], split), None))
        pipeline.run().wait_until_finish()

        summary = _summarise(counts_prefix + ".jsonl", rejected_path, splits)
        summary["input_base"] = exec_properties["input_base"]
        summary["max_rejected_fraction"] = float(exec_properties["max_rejected_fraction"])
        with open(os.path.join(report.uri, REPORT_FILE), "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True)
        _check(summary, os.path.join(report.uri, REPORT_FILE))


def _summarise(counts_path: str, rejected_path: str, splits: List[str]) -> Dict[str, Any]:
    from tensorflow.io import gfile  # pylint: disable=import-outside-toplevel

    per_split = {split: 0 for split in splits}
    with gfile.GFile(counts_path) as handle:
        for line in handle:
            row = json.loads(line)
            per_split[row["split"]] = row["count"]
    rejected, by_reason = [], {}
    with gfile.GFile(rejected_path) as handle:
        for line in handle:
            row = json.loads(line)
            rejected.append(row)
            reason = row["reason"].split(" (")[0].split(":")[0]
            by_reason[reason] = by_reason.get(reason, 0) + 1
    accepted = sum(per_split.values())
    total = accepted + len(rejected)
    return {
        "examples_per_split": per_split,
        "accepted": accepted,
        "rejected": len(rejected),
        "rejected_fraction": (len(rejected) / total) if total else 0.0,
        "rejected_by_reason": by_reason,
        "rejected_examples": sorted(rejected, key=lambda r: r["source"])[:_MAX_LISTED_REJECTS],
        "rejected_list": rejected_path,
    }


def _check(summary: Dict[str, Any], report_path: str) -> None:
    if summary["rejected"]:
        log.warning("rejected %d of %d reviews (%s); see %s", summary["rejected"],
                    summary["accepted"] + summary["rejected"], summary["rejected_by_reason"], report_path)
    if summary["rejected_fraction"] > summary["max_rejected_fraction"]:
        raise UserError(
            f"{summary['rejected']} of {summary['accepted'] + summary['rejected']} reviews "
            f"({summary['rejected_fraction']:.1%}) could not be read, more than the allowed "
            f"{summary['max_rejected_fraction']:.1%}; the list is in {summary['rejected_list']}.")
    empty = [split for split in ("train", "eval") if not summary["examples_per_split"].get(split)]
    if empty:
        raise UserError(f"The {' and '.join(empty)} split came out empty; the input has too few reviews "
                        f"({summary['accepted']}) for the configured eval share.")


class ImdbExampleGenSpec(types.ComponentSpec):
    PARAMETERS = {
        "input_base": ExecutionParameter(type=str),
        "eval_percent": ExecutionParameter(type=int),
        "max_rejected_fraction": ExecutionParameter(type=float),
        # A digest of the input files (names, sizes, times): changed data must not hit the cache.
        "input_fingerprint": ExecutionParameter(type=str, optional=True),
    }
    INPUTS: Dict[str, ChannelParameter] = {}
    OUTPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "ingestion_report": ChannelParameter(type=IngestionReport),
    }


class ImdbExampleGen(base_beam_component.BaseBeamComponent):
    """Emits tf.Examples with text, label (1 pos / 0 neg), rating, review_id and length_bucket."""

    SPEC_CLASS = ImdbExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, input_base: str, eval_percent: int = 10, max_rejected_fraction: float = 0.01,
                 input_fingerprint: str = ""):
        super().__init__(spec=ImdbExampleGenSpec(
            input_base=input_base,
            eval_percent=eval_percent,
            max_rejected_fraction=max_rejected_fraction,
            input_fingerprint=input_fingerprint,
            examples=types.Channel(type=standard_artifacts.Examples),
            ingestion_report=types.Channel(type=IngestionReport)))
