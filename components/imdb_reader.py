"""Reading IMDB reviews into tf.Examples: the pure functions behind ImdbExampleGen.

Kept free of Beam and TFX so that every rule (what is rejected, which split a review lands in,
what the features are) is unit-testable in milliseconds.
"""
from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import os
import re
from typing import Iterator, List, Optional, Tuple

import tensorflow as tf

from models.errors import UserError

LABEL_DIRS = {"pos": 1, "neg": 0}
SOURCE_SPLITS = ("train", "test")   # folders of aclImdb; train/unsup (unlabeled) is never read
CSV_SUFFIXES = (".csv", ".csv.gz")
_REVIEW_FILE = re.compile(r"^(?P<id>\d+)_(?P<rating>\d+)\.txt$")
# Review length buckets (whitespace words) used to slice evaluation metrics.
LENGTH_BUCKETS = ((0, 100, "000-099"), (100, 200, "100-199"), (200, 400, "200-399"), (400, None, "400+"))


@dataclasses.dataclass(frozen=True)
class Review:
    text: str
    label: int
    review_id: str
    rating: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Rejected:
    source: str
    reason: str


@dataclasses.dataclass(frozen=True)
class InputLayout:
    """What `input_base` holds: an aclImdb folder, or CSV files, per source split."""

    kind: str                      # "aclimdb" or "csv"
    sources: Tuple[Tuple[str, str], ...]  # (source split, folder or CSV path)


def length_bucket(text: str) -> str:
    words = len(text.split())
    for low, high, name in LENGTH_BUCKETS:
        if words >= low and (high is None or words < high):
            return name
    raise AssertionError("unreachable")


def output_split(review_id: str, source_split: str, eval_percent: int) -> str:
    """train folder -> train/eval by a stable hash of the review id; test folder -> test."""
    if source_split == "test":
        return "test"
    bucket = int.from_bytes(hashlib.sha256(review_id.encode("utf-8")).digest()[:8], "big") % 100
    return "eval" if bucket < eval_percent else "train"


def detect_layout(input_base: str) -> InputLayout:
    """Accepts an aclImdb folder (or its parent), a CSV file, or a folder with train/test CSVs."""
    base = input_base.rstrip("/")
    if base.endswith(CSV_SUFFIXES):
        if not tf.io.gfile.exists(base):
            raise UserError(f"The data file {base} does not exist.")
        return InputLayout("csv", (("train", base),))
    if not tf.io.gfile.isdir(base):
        raise UserError(f"The data location {base} is neither a folder nor a .csv file.")
    for candidate in (base, os.path.join(base, "aclImdb")):
        found = tuple(
            (split, os.path.join(candidate, split)) for split in SOURCE_SPLITS
            if any(tf.io.gfile.isdir(os.path.join(candidate, split, d)) for d in LABEL_DIRS))
        if any(split == "train" for split, _ in found):
            return InputLayout("aclimdb", found)
    csvs = []
    for split in SOURCE_SPLITS:
        for suffix in CSV_SUFFIXES:
            path = os.path.join(base, split + suffix)
            if tf.io.gfile.exists(path):
                csvs.append((split, path))
                break
    if csvs and csvs[0][0] == "train":
        return InputLayout("csv", tuple(csvs))
    raise UserError(
        f"No IMDB reviews found in {base}: expected aclImdb/train/{{pos,neg}}/<id>_<rating>.txt, "
        "a CSV with a text,label header, or a folder holding train.csv(.gz).")


def list_review_files(folder: str) -> List[Tuple[str, int]]:
    """(path, label) for every file in folder/{pos,neg}; anything else there is left alone."""
    files = []
    for label_dir, label in sorted(LABEL_DIRS.items()):
        pattern = os.path.join(folder, label_dir, "*")
        files.extend((path, label) for path in sorted(tf.io.gfile.glob(pattern)))
    return files


def read_review_file(path: str, label: int, source_split: str) -> "Review | Rejected":
    """One aclImdb review file -> Review, or Rejected with the reason (never raises on bad data)."""
    name = os.path.basename(path)
    match = _REVIEW_FILE.match(name)
    review_id = f"{source_split}/{'pos' if label else 'neg'}/{name[:-4] if name.endswith('.txt') else name}"
    if not match:
        return Rejected(path, "file name is not <id>_<rating>.txt")
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            raw = handle.read()
    except (OSError, tf.errors.OpError) as err:
        return Rejected(path, f"unreadable: {err}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Rejected(path, f"not valid UTF-8 (byte {err.start})")
    if not text.strip():
        return Rejected(path, "empty review")
    return Review(text=text, label=label, review_id=review_id, rating=int(match.group("rating")))


def read_csv_reviews(path: str, source_split: str) -> Iterator["Review | Rejected"]:
    """Rows of a `text,label` CSV (optionally gzipped); bad rows are Rejected, not fatal."""
    with tf.io.gfile.GFile(path, "rb") as handle:
        raw = handle.read()
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        yield Rejected(path, f"not valid UTF-8 (byte {err.start}); the whole file was skipped")
        return
    reader = csv.DictReader(io.StringIO(content, newline=""))
    if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
        raise UserError(f"The CSV {path} must have a header with text and label columns, found {reader.fieldnames}.")
    for row_number, row in enumerate(reader, start=2):
        source = f"{path}:{row_number}"
        text, label = row.get("text") or "", (row.get("label") or "").strip()
        if label not in ("0", "1"):
            yield Rejected(source, f"label {label!r} is not 0 or 1")
        elif not text.strip():
            yield Rejected(source, "empty review")
        else:
            yield Review(text=text, label=int(label), review_id=f"{source_split}/csv/{row_number}")


def to_example(review: Review) -> tf.train.Example:
    def bytes_feature(value: str) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))

    def int_feature(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "text": bytes_feature(review.text),
        "label": int_feature(review.label),
        "review_id": bytes_feature(review.review_id),
        "length_bucket": bytes_feature(length_bucket(review.text)),
    }
    if review.rating is not None:
        features["rating"] = int_feature(review.rating)
    return tf.train.Example(features=tf.train.Features(feature=features))
