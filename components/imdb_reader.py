"""Reading IMDB reviews into tf.Examples: the pure functions behind ImdbExampleGen.

Kept free of Beam and TFX so that every rule (what is rejected, which split a review lands in,
what counts as a duplicate, what the features are) is unit-testable in milliseconds.

Every input is a *row*: a review file under `{train,test}/{pos,neg}/` or a data row of a CSV.
A row is accepted (a `Review`) or rejected (a `Rejected` with a short, stable `reason` and a
free-text `detail`); it is never dropped silently. Files of an aclImdb folder outside
`pos/`/`neg/` (and `train/unsup/`, which is never read) are listed as *ignored*.

Rejection reasons (the keys of the report's `rejected_by_reason`; `REASONS` lists them):
"symbolic link", "bad file name", "rating contradicts folder", "too large", "unreadable",
"not UTF-8", "empty", "bad CSV row", "bad label", "unbalanced quote".
"""
from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import os
import re
import unicodedata
import zlib
from typing import Iterator, List, Optional, Sequence, Tuple

import tensorflow as tf

from models.errors import UserError

LABEL_DIRS = {"pos": 1, "neg": 0}
# Ratings each folder may hold (Maas et al.: negative <= 4 stars, positive >= 7 of 10).
RATINGS = {0: range(1, 5), 1: range(7, 11)}
SOURCE_SPLITS = ("train", "test")   # folders of aclImdb; train/unsup (unlabeled) is never read
UNSUP_DIR = "unsup"
CSV_SUFFIXES = (".csv", ".csv.gz")
_REVIEW_FILE = re.compile(r"^(?P<id>\d+)_(?P<rating>\d+)\.txt$")
# Review length buckets (whitespace words) used to slice evaluation metrics.
LENGTH_BUCKETS = ((0, 100, "000-099"), (100, 200, "100-199"), (200, 400, "200-399"), (400, None, "400+"))

SYMLINK, BAD_NAME, RATING_CONTRADICTS = "symbolic link", "bad file name", "rating contradicts folder"
TOO_LARGE, UNREADABLE, NOT_UTF8, EMPTY = "too large", "unreadable", "not UTF-8", "empty"
BAD_CSV_ROW, BAD_LABEL, UNBALANCED_QUOTE = "bad CSV row", "bad label", "unbalanced quote"
REASONS = (SYMLINK, BAD_NAME, RATING_CONTRADICTS, TOO_LARGE, UNREADABLE, NOT_UTF8, EMPTY,
           BAD_CSV_ROW, BAD_LABEL, UNBALANCED_QUOTE)

# The label column of a CSV, as people write it: compared case-insensitively, surrounding spaces ignored.
CSV_LABELS = {"1": 1, "pos": 1, "positive": 1, "0": 0, "neg": 0, "negative": 0}
ACCEPTED_LABELS = "1, pos or positive for a positive review and 0, neg or negative for a negative one (any case)"

_BOM = b"\xef\xbb\xbf"
_BR_TAG = re.compile(r"<br\s*/?>")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclasses.dataclass(frozen=True)
class Review:
    text: str
    label: int
    review_id: str
    rating: Optional[int] = None
    split: str = "train"      # the source split (folder or CSV) it came from: train or test
    source: str = ""          # the file it was read from
    line: int = 0             # its first line in a CSV (0: a review file)

    @property
    def where(self) -> str:
        """path, or path:line for a CSV row."""
        return f"{self.source}:{self.line}" if self.line else self.source


@dataclasses.dataclass(frozen=True)
class Rejected:
    source: str               # file path, or path:line for a CSV row
    reason: str               # one of REASONS
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class InputLayout:
    """What `input_base` holds: an aclImdb folder, or CSV files, per source split."""

    kind: str                      # "aclimdb" or "csv"
    sources: Tuple[Tuple[str, str], ...]  # (source split, folder or CSV path)
    root: str = ""                 # the aclImdb folder itself (aclimdb only)


@dataclasses.dataclass(frozen=True)
class Listing:
    """An aclImdb folder, listed without following links."""

    reviews: Tuple[Tuple[str, int, str], ...]  # (path, label, source split) of every entry in pos/, neg/
    ignored: Tuple[str, ...]                   # other files, relative to the aclImdb folder


def csv_label(value: str) -> Optional[int]:
    """1 or 0 for a label as written in a CSV (`CSV_LABELS`), None for anything else."""
    return CSV_LABELS.get(value.strip().casefold())


def is_uri(path: str) -> bool:
    return bool(_URI.match(path))


def normalise_text(text: str) -> str:
    """The text duplicates are compared on: Unicode NFC, case-folded, every `<br />` (`<br>`,
    `<br/>`) tag and every run of whitespace made one space, leading/trailing space removed.
    Punctuation and words are kept, so two reviews that differ in a word are never merged."""
    text = _BR_TAG.sub(" ", unicodedata.normalize("NFC", text).casefold())
    return " ".join(text.split())


def text_digest(text: str) -> str:
    """SHA-256 (hex) of the normalised text: the duplicate key and the train/eval hash."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def length_bucket(text: str) -> str:
    words = len(text.split())
    for low, high, name in LENGTH_BUCKETS:
        if words >= low and (high is None or words < high):
            return name
    raise AssertionError("unreachable")


def output_split(digest: str, source_split: str, eval_percent: int) -> str:
    """test source -> test; train source -> train or eval by a stable hash of the review's
    normalised text (`text_digest`), so copies of one text always land in the same split."""
    if source_split == "test":
        return "test"
    return "eval" if int(digest[:16], 16) % 100 < eval_percent else "train"


def survivor_key(review: Review) -> Tuple[int, str, int]:
    """Of several copies of one text the one with the smallest key is kept: a test copy first,
    then the smallest source path, then (rows of one CSV) the smallest line number."""
    return (0 if review.split == "test" else 1, review.source, review.line)


def duplicates_in_words(by_kind: dict) -> str:
    """{"train_copy_of_test": 123, "within_split": 299} -> "123 train copies of test reviews, 299
    within a split" (the kinds of dropped duplicates, for people)."""
    words = []
    for kind, count in sorted((by_kind or {}).items()):
        if kind == "train_copy_of_test":
            words.append(f"{count} train cop{'y' if count == 1 else 'ies'} of {'a test review' if count == 1 else 'test reviews'}")
        elif kind == "within_split":
            words.append(f"{count} within a split")
        else:
            words.append(f"{count} {kind.replace('_', ' ')}")
    return ", ".join(words)


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
            return InputLayout("aclimdb", found, candidate)
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


def _entries(folder: str, know_dirs: bool = True) -> List[Tuple[str, str]]:
    """Sorted (name, kind) in a folder, kind "file", "dir" or "link"; links are never followed.
    Local folders are read with lstat (os.scandir); object stores have no links. With
    know_dirs=False an object-store name without a trailing "/" is taken for a file unasked
    (one listing call for a folder of 12,500 reviews rather than one call per review)."""
    found = []
    if not is_uri(folder):
        with os.scandir(folder) as scan:
            for entry in scan:
                kind = ("link" if entry.is_symlink() else
                        "dir" if entry.is_dir(follow_symlinks=False) else "file")
                found.append((entry.name, kind))
    else:
        for name in tf.io.gfile.listdir(folder):
            if name.endswith("/"):
                found.append((name.rstrip("/"), "dir"))
            else:
                is_dir = know_dirs and tf.io.gfile.isdir(os.path.join(folder, name))
                found.append((name, "dir" if is_dir else "file"))
    return sorted(found)


def list_aclimdb(root: str, splits: Sequence[str]) -> Listing:
    """Every entry of root/{split}/{pos,neg}/ for the given splits is a review row (a symbolic
    link too: reading rejects it); train/unsup is skipped unread; every other file under root
    is ignored (listed). Nothing is reached through a link."""
    reviews: List[Tuple[str, int, str]] = []
    ignored: List[str] = []

    def ignore_tree(folder: str, rel: str) -> None:
        for name, kind in _entries(folder):
            if kind == "dir":
                ignore_tree(os.path.join(folder, name), f"{rel}{name}/")
            else:
                ignored.append(rel + name)

    for split_name, split_kind in _entries(root):
        split_path = os.path.join(root, split_name)
        if split_name not in splits:
            if split_kind == "dir":
                ignore_tree(split_path, split_name + "/")
            else:
                ignored.append(split_name)
            continue
        if split_kind != "dir":            # a link standing in for train/ or test/
            reviews.append((split_path, -1, split_name))
            continue
        for sub, sub_kind in _entries(split_path):
            sub_path = os.path.join(split_path, sub)
            if sub in LABEL_DIRS and sub_kind == "dir":
                for name, kind in _entries(sub_path, know_dirs=False):
                    if kind == "dir":
                        ignore_tree(os.path.join(sub_path, name), f"{split_name}/{sub}/{name}/")
                    else:
                        reviews.append((os.path.join(sub_path, name), LABEL_DIRS[sub], split_name))
            elif sub in LABEL_DIRS and sub_kind == "link":
                reviews.append((sub_path, LABEL_DIRS[sub], split_name))
            elif split_name == "train" and sub == UNSUP_DIR:
                continue
            elif sub_kind == "dir":
                ignore_tree(sub_path, f"{split_name}/{sub}/")
            else:
                ignored.append(f"{split_name}/{sub}")
    return Listing(tuple(reviews), tuple(ignored))


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def read_review_file(path: str, label: int, source_split: str, max_review_bytes: int) -> "Review | Rejected":
    """One aclImdb review file -> Review, or Rejected with the reason (never raises on bad data).
    A symbolic link is rejected unread; a file bigger than max_review_bytes is rejected, not cut."""
    name = os.path.basename(path)
    if not is_uri(path) and os.path.islink(path):
        return Rejected(path, SYMLINK, f"points to {os.readlink(path)}; links are never followed")
    folder = {1: "pos", 0: "neg"}.get(label, "")
    review_id = f"{source_split}/{folder}/{name[:-4] if name.endswith('.txt') else name}"
    match = _REVIEW_FILE.match(name)
    if not match:
        return Rejected(path, BAD_NAME, "the name is not <id>_<rating>.txt")
    rating = int(match.group("rating"))
    if label not in RATINGS or rating not in RATINGS[label]:
        allowed = RATINGS.get(label, range(0))
        return Rejected(path, RATING_CONTRADICTS,
                        f"{folder}/{name} has rating {rating}, but {folder}/ holds ratings "
                        f"{allowed.start}-{allowed.stop - 1}")
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            raw = handle.read(max_review_bytes + 1)
    except (OSError, tf.errors.OpError) as err:
        return Rejected(path, UNREADABLE, str(err).splitlines()[0] if str(err) else type(err).__name__)
    if len(raw) > max_review_bytes:
        return Rejected(path, TOO_LARGE, f"more than max_review_bytes={max_review_bytes} bytes")
    try:
        text = _strip_bom(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        return Rejected(path, NOT_UTF8, f"invalid byte at offset {err.start}")
    if not text.strip():
        return Rejected(path, EMPTY, "no text")
    return Review(text=text, label=label, review_id=review_id, rating=rating, split=source_split, source=path)


# -- CSV -----------------------------------------------------------------------------------------

_QUOTE = ord('"')
_FIELD_END = re.compile(rb"[,\n]")


def _field_end(data: bytes, pos: int) -> int:
    match = _FIELD_END.search(data, pos)
    return match.start() if match else len(data)


def _closing_quote(data: bytes, pos: int) -> int:
    """Index of the quote that closes a quoted field whose content starts at pos, or -1
    (`""` inside a quoted field is an escaped quote)."""
    while True:
        quote = data.find(b'"', pos)
        if quote < 0 or data[quote + 1:quote + 2] != b'"':
            return quote
        pos = quote + 2


class CsvReviews:
    """The rows of a `text,label` CSV (optionally gzipped), one `Review` or `Rejected` each.

    Split into rows by its own scanner on the raw bytes (RFC 4180: `"` quotes a field, `""` is a
    quote inside it, a quoted field may hold commas and line breaks), so a row is decoded, checked
    and rejected alone: one bad byte, a wrong column count, a label that is not one of
    `CSV_LABELS` (1/pos/positive, 0/neg/negative, any case), an empty or too large text reject
    that row only, with its line number. A UTF-8 byte-order mark (Excel)
    is skipped; lines may end in CRLF or LF; blank lines are not rows.

    An unbalanced quote would otherwise make the rest of the file one field. A quoted field is
    taken for a runaway, and its row rejected as "unbalanced quote" at the line where the quote
    opened, when it is never closed, or when the field runs over a line break and either the
    rest of the opening line or a later line inside the field looks like a complete row (the
    header's number of columns, an accepted label); reading then resumes on the line after the one
    where the quote opened, so the rows after it are kept.

    `rows_seen` counts what the scanner cut out (independently of how the rows were judged).
    A corrupt or truncated .csv.gz, or a missing header, is a UserError naming the file.
    """

    def __init__(self, path: str, source_split: str, max_review_bytes: int):
        self.path, self.split, self.max_review_bytes = path, source_split, max_review_bytes
        self.rows_seen = 0
        self._columns = 0
        self._label_index = -1
        self._text_index = -1

    def _load(self) -> bytes:
        try:
            with tf.io.gfile.GFile(self.path, "rb") as handle:
                raw = handle.read()
        except (OSError, tf.errors.OpError) as err:
            raise UserError(f"The data file {self.path} cannot be read ({str(err).splitlines()[0]}).") from None
        if self.path.endswith(".gz"):
            try:
                raw = gzip.decompress(raw)
            except (EOFError, OSError, zlib.error) as err:
                raise UserError(f"The compressed file {self.path} is corrupt or truncated ({err}); "
                                "export or download it again.") from None
        return raw[len(_BOM):] if raw.startswith(_BOM) else raw

    def _looks_like_row(self, fields_before: int, segment: bytes) -> bool:
        """Would `segment` (one line, or the rest of one) complete a row of this CSV?"""
        try:
            fields = next(csv.reader([segment.rstrip(b"\r").decode("utf-8", "replace")]))
        except (csv.Error, StopIteration):
            return False
        index = self._label_index - fields_before
        return (fields_before + len(fields) == self._columns and 0 <= index < len(fields)
                and csv_label(fields[index]) is not None)

    def _runaway(self, data: bytes, content: int, close: int, fields_before: int) -> Optional[str]:
        """Why the quoted field starting at `content` (closed at `close`, -1: never) is a
        runaway, or None when it is an ordinary field."""
        end = len(data) if close < 0 else close
        first_break = data.find(b"\n", content, end)
        if first_break < 0:
            return None if close >= 0 else "is never closed"
        if close < 0:
            return "is never closed"
        if self._label_index >= fields_before and self._looks_like_row(fields_before, data[content:first_break]):
            return "is not closed on its line, which reads as a complete row"
        line_start = first_break + 1
        while True:
            line_end = data.find(b"\n", line_start, end)
            if line_end < 0:
                return None   # the text after the last break is the field's own tail
            if self._looks_like_row(0, data[line_start:line_end]):
                return "is not closed before a line that reads as a complete row"
            line_start = line_end + 1

    def _rows(self, data: bytes) -> Iterator[Tuple[int, Optional[List[bytes]], str]]:
        """(line, fields, "") per row, or (line, None, why) for a runaway quote; the header first."""
        pos, line, size = 0, 1, len(data)
        while pos < size:
            if data[pos] == 0x0A or data.startswith(b"\r\n", pos):      # a blank line
                pos, line = data.index(b"\n", pos) + 1, line + 1
                continue
            row_line, fields, runaway = line, [], ""
            while True:
                if pos < size and data[pos] == _QUOTE:
                    close = _closing_quote(data, pos + 1)
                    why = self._runaway(data, pos + 1, close, len(fields)) if self._columns else None
                    if why:
                        break_at = data.find(b"\n", pos)
                        runaway = f"the quote opened on line {line} {why}"
                        pos = size if break_at < 0 else break_at + 1
                        line += 1
                        break
                    if close < 0:                   # the header's own runaway: the rest is the header
                        close = size
                    value = data[pos + 1:close].replace(b'""', b'"')
                    line += data.count(b"\n", pos, close)
                    end = _field_end(data, min(close + 1, size))
                    value += data[close + 1:end]
                else:
                    end = _field_end(data, pos)
                    value = data[pos:end]
                fields.append(value)
                pos = end
                if pos < size and data[pos] == ord(","):
                    pos += 1
                    continue
                if pos < size:
                    pos, line = pos + 1, line + 1
                break
            if runaway:
                yield row_line, None, runaway
            else:
                if fields[-1].endswith(b"\r"):
                    fields[-1] = fields[-1][:-1]
                yield row_line, fields, ""

    def _header(self, rows: Iterator[Tuple[int, Optional[List[bytes]], str]]) -> None:
        first = next(rows, None)
        if first is None:
            raise UserError(f"The CSV {self.path} is empty; it needs a header row naming its text and label columns.")
        try:
            names = [field.decode("utf-8").strip() for field in first[1]]
        except UnicodeDecodeError:
            names = [field.decode("utf-8", "replace").strip() for field in first[1]]
        if "text" not in names or "label" not in names:
            raise UserError(f"The CSV {self.path} must start with a header naming its text and label columns, "
                            f"found {names}.")
        self._columns, self._text_index, self._label_index = len(names), names.index("text"), names.index("label")

    def __iter__(self) -> Iterator["Review | Rejected"]:
        rows = self._rows(self._load())
        self._header(rows)
        for line, fields, runaway in rows:
            self.rows_seen += 1
            yield self._judge(line, fields, runaway)

    def _judge(self, line: int, fields: Optional[List[bytes]], runaway: str) -> "Review | Rejected":
        source = f"{self.path}:{line}"
        if fields is None:
            return Rejected(source, UNBALANCED_QUOTE, runaway)
        if len(fields) != self._columns:
            return Rejected(source, BAD_CSV_ROW, f"{len(fields)} fields where the header has {self._columns}")
        if len(fields[self._text_index]) > self.max_review_bytes:
            return Rejected(source, TOO_LARGE, f"{len(fields[self._text_index])} bytes, more than "
                                               f"max_review_bytes={self.max_review_bytes}")
        try:
            text = fields[self._text_index].decode("utf-8")
            label = fields[self._label_index].decode("utf-8").strip()
        except UnicodeDecodeError as err:
            return Rejected(source, NOT_UTF8, f"invalid byte at offset {err.start} of a field")
        value = csv_label(label)
        if value is None:
            return Rejected(source, BAD_LABEL, f"label {label[:20]!r} is not one of the accepted labels: "
                                               f"{ACCEPTED_LABELS}")
        if not text.strip():
            return Rejected(source, EMPTY, "no text")
        return Review(text=text, label=value, review_id=f"{self.split}/csv/{line}", split=self.split,
                      source=self.path, line=line)


def read_csv_reviews(path: str, source_split: str, max_review_bytes: int) -> Iterator["Review | Rejected"]:
    """Rows of a `text,label` CSV (optionally gzipped); see `CsvReviews`."""
    return iter(CsvReviews(path, source_split, max_review_bytes))


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
