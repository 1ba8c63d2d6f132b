"""ImdbExampleGen: ingests the aclImdb folder layout (or CSV) into train/eval/test tf.Examples.

Why a custom component rather than FileBasedExampleGen: the eval split must be carved from the
*train* folder while the test folder stays its own split, review files carry their label in the
folder name and the rating in the file name, and unreadable files must be counted and reported
rather than crash the run or vanish silently.

What it guarantees (each written down in `ingestion_report.json`):

- **Every row is accounted for.** A review file or CSV row is accepted, rejected (with a short
  reason, `imdb_reader.REASONS`), dropped as a duplicate or dropped for conflicting labels;
  other files in the aclImdb folder are ignored and listed. `seen` is counted where the rows are
  found (the folder listing, the CSV row scanner), apart from the counts of what came out, and
  the run fails unless seen = accepted + rejected + duplicates dropped + conflicting labels
  dropped + ignored.
- **No exact duplicate spans two splits.** Reviews are grouped by a digest of their normalised
  text (`imdb_reader.normalise_text`: NFC, case-folded, `<br />` and whitespace runs made one
  space); one copy of each text is kept: a test copy if there is one (its train copies are
  dropped, "train_copy_of_test"), else the copy with the smallest source path
  ("within_split"). The kept train-folder copy goes to train or eval by a stable hash of that
  digest, so the choice never depends on the order Beam workers see the rows.
- **No text is trained on with a label it contradicts.** When the copies of one normalised text
  carry different labels (filed under both pos/ and neg/, or 1 and 0 in a CSV), every copy is
  dropped, in every split: picking one would train (or evaluate) the review with an arbitrary
  label. They are counted apart from duplicates ("label_conflicts", `label_conflicts.jsonl`).
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
from typing import Any, Dict, List, Tuple

import apache_beam as beam
import tensorflow as tf
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
REJECTED_FILE = "rejected.jsonl"
DROPPED_FILE = "duplicates_dropped.jsonl"
CONFLICTS_FILE = "label_conflicts.jsonl"
LEDGER_FILE = "ledger.jsonl"   # the pipeline's raw output, split into the two lists above
WITHIN_SPLIT, TRAIN_COPY_OF_TEST = "within_split", "train_copy_of_test"
DUPLICATE_KINDS = (WITHIN_SPLIT, TRAIN_COPY_OF_TEST)
LABEL_CONFLICT = "label_conflict"
NO_TEST_NOTE = "no test/ folder: the run has no test split"
_MAX_LISTED_REJECTS = 50
_MAX_LISTED = 10
MAX_LISTED_CONFLICTS = 5
_ORDER_SEED = 20110619  # ACL 2011, the data set's paper
_BEAM_SUFFIX = re.compile(r"\s*\[while running '[^']*'\]\s*$")

log = logging.getLogger("imdb.example_gen")


class _Read(beam.DoFn):
    """A source (one review file, or one CSV) -> its rows: reviews keyed by the digest of their
    normalised text, rejects to a side output, and (CSV) how many rows the scanner cut."""

    def __init__(self, max_review_bytes: int):
        self._max_review_bytes = max_review_bytes

    def process(self, element):
        kind, path, label, source_split = element
        if kind == "file":
            records = [imdb_reader.read_review_file(path, label, source_split, self._max_review_bytes)]
        else:
            records = imdb_reader.CsvReviews(path, source_split, self._max_review_bytes)
        for record in records:
            if isinstance(record, imdb_reader.Rejected):
                yield beam.pvalue.TaggedOutput("rejected", {"kind": "rejected", "source": record.source,
                                                            "reason": record.reason, "detail": record.detail})
            else:
                yield imdb_reader.text_digest(record.text), record
        if kind == "csv":
            yield beam.pvalue.TaggedOutput("seen", ("seen_csv_rows", records.rows_seen))


class _KeepOneCopy(beam.DoFn):
    """All copies of one normalised text -> the survivor as (output split, tf.Example); the
    others to the "dropped" output, with the kind of duplicate and both sources. Copies that
    disagree on the label are all dropped (kind "label_conflict"), none kept."""

    def __init__(self, eval_percent: int):
        self._eval_percent = eval_percent

    def process(self, keyed):
        digest, copies = keyed
        ordered = sorted(copies, key=imdb_reader.survivor_key)
        if len({copy.label for copy in ordered}) > 1:
            first = min(copy.where for copy in ordered)
            for copy in ordered:
                yield beam.pvalue.TaggedOutput("dropped", {
                    "kind": LABEL_CONFLICT, "dropped": copy.where, "label": copy.label, "text_of": first,
                    "other_label": sorted(c.where for c in ordered if c.label != copy.label)[:MAX_LISTED_CONFLICTS]})
            return
        kept = ordered[0]
        split = imdb_reader.output_split(digest, kept.split, self._eval_percent)
        yield split, imdb_reader.to_example(kept)
        for copy in ordered[1:]:
            kind = TRAIN_COPY_OF_TEST if kept.split == "test" and copy.split != "test" else WITHIN_SPLIT
            yield beam.pvalue.TaggedOutput("dropped", {
                "kind": kind, "dropped": copy.where, "kept": kept.where, "kept_in": split})


def _source_elements(layout: imdb_reader.InputLayout, listing: imdb_reader.Listing) -> List[tuple]:
    """Review files in a fixed pseudo-random order: the folders list all negatives before all
    positives, which would hand the Trainer long single-label runs where a runner keeps input
    order. Which rows are kept and the split each lands in never depend on order (the copies of
    a text are grouped and one chosen by `imdb_reader.survivor_key`)."""
    if layout.kind == "csv":
        return [("csv", path, -1, split) for split, path in layout.sources]
    elements = [("file", path, label, split) for path, label, split in listing.reviews]
    random.Random(_ORDER_SEED).shuffle(elements)
    return elements


def _no_test_note(layout: imdb_reader.InputLayout, input_base: str) -> str:
    if layout.kind == "aclimdb":
        if tf.io.gfile.isdir(os.path.join(layout.root, "test")):
            return "test/ holds no pos/ or neg/ folder: the run has no test split"
        return NO_TEST_NOTE
    if input_base.rstrip("/").endswith(imdb_reader.CSV_SUFFIXES):
        return "a single CSV file: the run has no test split"
    return "no test.csv(.gz) beside train.csv: the run has no test split"


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads every review with Beam, writes Split-{train,eval,test}/ and an ingestion report."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        input_base = exec_properties["input_base"]
        eval_percent = int(exec_properties["eval_percent"])
        max_review_bytes = int(exec_properties["max_review_bytes"])
        layout = imdb_reader.detect_layout(input_base)
        examples = artifact_utils.get_single_instance(output_dict["examples"])
        report = artifact_utils.get_single_instance(output_dict["ingestion_report"])
        has_test = any(s == "test" for s, _ in layout.sources)
        splits = ["train", "eval"] + (["test"] if has_test else [])
        notes = [] if has_test else [_no_test_note(layout, input_base)]
        for note in notes:
            log.warning("%s (input %s)", note, input_base)
        examples.split_names = artifact_utils.encode_split_names(splits)
        examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, "tfrecords_gzip")

        listing = (imdb_reader.list_aclimdb(layout.root, [s for s, _ in layout.sources])
                   if layout.kind == "aclimdb" else imdb_reader.Listing((), ()))
        sources = _source_elements(layout, listing)
        if layout.kind == "aclimdb" and not sources:
            raise UserError(f"No review files under {input_base}: expected train/pos/ and train/neg/ "
                            "to hold <id>_<rating>.txt files.")

        tf.io.gfile.makedirs(report.uri)
        ledger_path = os.path.join(report.uri, LEDGER_FILE)
        pipeline = self._make_beam_pipeline()
        read = (pipeline
                | "Sources" >> beam.Create(sources, reshuffle=True)
                | "Read" >> beam.ParDo(_Read(max_review_bytes)).with_output_types(Tuple[str, Any])
                .with_outputs("rejected", "seen", main="reviews"))
        kept = (read.reviews
                | "GroupCopies" >> beam.GroupByKey()
                | "KeepOneCopy" >> beam.ParDo(_KeepOneCopy(eval_percent)).with_output_types(Tuple[str, Any])
                .with_outputs("dropped", main="kept"))
        # One ledger of what happened: every reject and dropped copy, and the counts: accepted
        # per split counted at the writes, `seen` of the CSVs counted by their row scanner.
        counts = ((read.seen, kept.kept | "SplitKey" >> beam.Map(lambda kv: ("split:" + kv[0], 1)))
                  | "BothCounts" >> beam.Flatten()
                  | "Count" >> beam.CombinePerKey(sum)
                  | "CountRow" >> beam.Map(lambda kv: {"kind": "count", "key": kv[0], "count": kv[1]}))
        _ = ((counts, read.rejected, kept.dropped)
             | "Ledger" >> beam.Flatten()
             | "LedgerJson" >> beam.Map(json.dumps, sort_keys=True)
             | "WriteLedger" >> beam.io.WriteToText(ledger_path, shard_name_template=""))
        by_split = kept.kept | "BySplit" >> beam.Partition(lambda kv, _n: splits.index(kv[0]), len(splits))
        for index, split in enumerate(splits):
            _ = (by_split[index]
                 | f"Example{split}" >> beam.Map(lambda kv: kv[1])
                 | f"Write{split}" >> WriteSplit(artifact_utils.get_split_uri([examples], split), None))
        try:
            pipeline.run().wait_until_finish()
        except UserError as err:   # raised while reading (a corrupt .csv.gz): keep it one sentence
            raise UserError(_BEAM_SUFFIX.sub("", str(err))) from None

        summary = _summarise(ledger_path, report.uri, splits, listing)
        summary["input_base"] = input_base
        summary["max_rejected_fraction"] = float(exec_properties["max_rejected_fraction"])
        summary["notes"] = notes
        report_path = os.path.join(report.uri, REPORT_FILE)
        with tf.io.gfile.GFile(report_path, "w") as handle:
            handle.write(json.dumps(summary, indent=2, sort_keys=True))
        _check(summary, report_path)


def _write_jsonl(path: str, rows: List[Dict[str, Any]]) -> None:
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def _summarise(ledger_path: str, report_dir: str, splits: List[str], listing: imdb_reader.Listing) -> Dict[str, Any]:
    """The report, from the pipeline's ledger (seen: the folder listing plus the CSV row scanner;
    accepted: counted at the writes; every reject and dropped copy). Writes the full lists of
    rejects, dropped duplicates and copies dropped for conflicting labels beside the report, sorted."""
    with tf.io.gfile.GFile(ledger_path) as handle:
        ledger = [json.loads(line) for line in handle if line.strip()]
    tf.io.gfile.remove(ledger_path)
    counts = {row["key"]: row["count"] for row in ledger if row["kind"] == "count"}
    rejected = sorted((row for row in ledger if row["kind"] == "rejected"), key=lambda r: (r["source"], r["reason"]))
    dropped = sorted((row for row in ledger if row["kind"] in DUPLICATE_KINDS), key=lambda r: (r["kind"], r["dropped"]))
    # Sorted by text, then path: the copies of one text sit together (a pos/ and a neg/ file).
    conflicts = sorted((row for row in ledger if row["kind"] == LABEL_CONFLICT),
                       key=lambda r: (r["text_of"], r["dropped"]))
    rejected_path, dropped_path = os.path.join(report_dir, REJECTED_FILE), os.path.join(report_dir, DROPPED_FILE)
    conflicts_path = os.path.join(report_dir, CONFLICTS_FILE)
    _write_jsonl(rejected_path, rejected)
    _write_jsonl(dropped_path, dropped)
    _write_jsonl(conflicts_path, conflicts)
    per_split = {split: counts.get("split:" + split, 0) for split in splits}
    by_reason: Dict[str, int] = {}
    for row in rejected:
        by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + 1
    by_kind: Dict[str, int] = {}
    for row in dropped:
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + 1
    seen = len(listing.reviews) + len(listing.ignored) + counts.get("seen_csv_rows", 0)
    reviews = seen - len(listing.ignored)
    return {
        "seen": seen,
        "examples_per_split": per_split,
        "accepted": sum(per_split.values()),
        "rejected": len(rejected),
        "rejected_fraction": (len(rejected) / reviews) if reviews else 0.0,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "rejected_examples": rejected[:_MAX_LISTED_REJECTS],
        "rejected_list": rejected_path,
        "duplicates_dropped": {"count": len(dropped), "by_kind": dict(sorted(by_kind.items())),
                               "examples": dropped[:_MAX_LISTED], "list": dropped_path},
        # Every copy of a text filed under both labels: dropped, counted apart from duplicates.
        "label_conflicts": {"count": len(conflicts), "texts": len({row["text_of"] for row in conflicts}),
                            "examples": [row["dropped"] for row in conflicts[:MAX_LISTED_CONFLICTS]],
                            "list": conflicts_path},
        "ignored": {"count": len(listing.ignored), "examples": list(listing.ignored[:_MAX_LISTED])},
    }


def _check(summary: Dict[str, Any], report_path: str) -> None:
    """Fails the run when the counts do not add up, too much was rejected, or a split is empty."""
    dropped, ignored = summary["duplicates_dropped"]["count"], summary["ignored"]["count"]
    conflicts = summary["label_conflicts"]
    accounted = summary["accepted"] + summary["rejected"] + dropped + conflicts["count"] + ignored
    if accounted != summary["seen"]:
        raise UserError(
            f"Ingestion lost count: {summary['seen']} rows and files were seen but {summary['accepted']} accepted "
            f"+ {summary['rejected']} rejected + {dropped} duplicates dropped + {conflicts['count']} conflicting "
            f"labels dropped + {ignored} ignored = {accounted}; "
            f"re-run on input nobody is changing, and report it with {report_path} if it happens again.")
    reviews = summary["seen"] - ignored
    kinds = imdb_reader.duplicates_in_words(summary["duplicates_dropped"]["by_kind"])
    log.info("read %d reviews: %d accepted (%s), %d rejected, %d duplicates dropped%s, "
             "conflicting labels dropped %d; %d other files ignored",
             reviews, summary["accepted"], ", ".join(f"{k} {v}" for k, v in summary["examples_per_split"].items()),
             summary["rejected"], dropped, f" ({kinds})" if kinds else "", conflicts["count"], ignored)
    if conflicts["count"]:
        log.warning("dropped all %d copies of %d text%s filed under both labels, so none is trained or evaluated "
                    "with either label (e.g. %s); the list is in %s", conflicts["count"], conflicts["texts"],
                    "" if conflicts["texts"] == 1 else "s", ", ".join(conflicts["examples"]), conflicts["list"])
    if summary["rejected"]:
        log.warning("rejected %d of %d reviews (%s); see %s", summary["rejected"], reviews,
                    summary["rejected_by_reason"], report_path)
    if summary["rejected_fraction"] > summary["max_rejected_fraction"]:
        raise UserError(
            f"{summary['rejected']} of {reviews} reviews "
            f"({summary['rejected_fraction']:.1%}) were rejected ("
            + ", ".join(f"{reason}: {count}" for reason, count in sorted(summary["rejected_by_reason"].items()))
            + f"), more than the allowed {summary['max_rejected_fraction']:.1%} (--max-rejected-fraction); "
            f"the list is in {summary['rejected_list']}.")
    empty = [split for split in ("train", "eval") if not summary["examples_per_split"].get(split)]
    if empty:
        raise UserError(f"The {' and '.join(empty)} split came out empty; the input has too few reviews "
                        f"({summary['accepted']}) for the configured eval share.")


class ImdbExampleGenSpec(types.ComponentSpec):
    PARAMETERS = {
        "input_base": ExecutionParameter(type=str),
        "eval_percent": ExecutionParameter(type=int),
        "max_rejected_fraction": ExecutionParameter(type=float),
        # Reviews bigger than this (bytes) are rejected as "too large", never cut.
        "max_review_bytes": ExecutionParameter(type=int),
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
                 input_fingerprint: str = "", *, max_review_bytes: int):
        super().__init__(spec=ImdbExampleGenSpec(
            input_base=input_base,
            eval_percent=eval_percent,
            max_rejected_fraction=max_rejected_fraction,
            max_review_bytes=max_review_bytes,
            input_fingerprint=input_fingerprint,
            examples=types.Channel(type=standard_artifacts.Examples),
            ingestion_report=types.Channel(type=IngestionReport)))
