"""ImdbExampleGen on tiny inputs each test writes itself: real Beam (DirectRunner) runs of the
executor, the written tf.Examples read back, and every row accounted for:
seen = accepted + rejected + duplicates dropped + conflicting labels dropped + ignored, with `seen`
equal to what the test wrote."""
import dataclasses
import gzip
import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components import imdb_reader
from components.artifacts import IngestionReport
from components.imdb_example_gen import NO_TEST_NOTE, REPORT_FILE, Executor, _check
from models.errors import UserError

MAX_BYTES = 4000
EVAL_PERCENT = 30


@dataclasses.dataclass
class Run:
    report: dict
    splits: Dict[str, List[Tuple[str, str, int]]]   # split -> [(review_id, text, label)]
    split_names: List[str]

    def texts(self, split=None):
        return [text for name, rows in self.splits.items() if split in (None, name) for _, text, _ in rows]

    def ids(self, split):
        return sorted(review_id for review_id, _, _ in self.splits[split])

    def rejected(self):
        """[(source relative to the data folder, reason)] of every rejected row, sorted."""
        return sorted((row["source"].split("/data/", 1)[-1], row["reason"]) for row in self.report["rejected_examples"])


def _run(tmp_path: Path, input_base, max_rejected_fraction=1.0) -> Run:
    examples, report = standard_artifacts.Examples(), IngestionReport()
    examples.uri, report.uri = str(tmp_path / "out" / "examples"), str(tmp_path / "out" / "report")
    Executor().Do({}, {"examples": [examples], "ingestion_report": [report]},
                  {"input_base": str(input_base), "eval_percent": EVAL_PERCENT,
                   "max_rejected_fraction": max_rejected_fraction, "max_review_bytes": MAX_BYTES})
    split_names = artifact_utils.decode_split_names(examples.split_names)
    splits = {}
    for split in split_names:
        files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz"))
        rows = []
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            rows.append((feature["review_id"].bytes_list.value[0].decode(),
                         feature["text"].bytes_list.value[0].decode(), feature["label"].int64_list.value[0]))
        splits[split] = rows
    run = Run(json.loads((tmp_path / "out" / "report" / REPORT_FILE).read_text()), splits, split_names)
    _assert_accounted(run)
    return run


def _assert_accounted(run: Run) -> None:
    """The report's counts agree with each other and with the examples actually written."""
    report = run.report
    assert report["seen"] == (report["accepted"] + report["rejected"] + report["duplicates_dropped"]["count"]
                              + report["label_conflicts"]["count"] + report["ignored"]["count"])
    assert report["examples_per_split"] == {split: len(rows) for split, rows in run.splits.items()}
    assert report["accepted"] == sum(len(rows) for rows in run.splits.values())
    assert report["rejected"] == sum(report["rejected_by_reason"].values())
    assert report["duplicates_dropped"]["count"] == sum(report["duplicates_dropped"]["by_kind"].values())


def _table(run: Run) -> Tuple[int, int, int, int, int]:
    """(rows in, accepted, rejected, duplicates dropped, ignored)."""
    report = run.report
    return (report["seen"], report["accepted"], report["rejected"], report["duplicates_dropped"]["count"],
            report["ignored"]["count"])


def _good_files(split: str, count: int, start: int = 0) -> Dict[str, str]:
    """`count` distinct, valid reviews, alternately positive and negative."""
    files = {}
    for index in range(start, start + count):
        positive = index % 2 == 0
        folder, rating = ("pos", 8) if positive else ("neg", 2)
        mood = "Loved every minute of" if positive else "Could not stand"
        files[f"{split}/{folder}/{index}_{rating}.txt"] = f"{mood} film number {index}, the cast and the music."
    return files


def _aclimdb(tmp_path: Path, extra: Dict[str, object] = None, n_train: int = 10, n_test: int = 4) -> Path:
    """tmp_path/data/aclImdb with n_train + n_test good reviews plus `extra` files (text or bytes)."""
    base = tmp_path / "data" / "aclImdb"
    files = {**_good_files("train", n_train), **_good_files("test", n_test, start=500), **(extra or {})}
    for rel, content in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return base


def _csv_rows(count: int, start: int = 0) -> List[bytes]:
    return [f'"Review {i}, with a comma and a ""quote""",{i % 2}'.encode() for i in range(start, start + count)]


def _write_csv(path: Path, header: bytes, rows: List[bytes], newline: bytes = b"\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(newline.join([header] + rows) + newline)
    return path


# -- aclImdb folders ------------------------------------------------------------------------------

def test_clean_folder_every_file_becomes_one_example(tmp_path):
    run = _run(tmp_path, _aclimdb(tmp_path))
    assert _table(run) == (14, 14, 0, 0, 0)
    assert run.split_names == ["train", "eval", "test"]
    assert len(run.splits["train"]) + len(run.splits["eval"]) == 10 and run.splits["eval"]
    assert run.ids("test") == ["test/neg/501_2", "test/neg/503_2", "test/pos/500_8", "test/pos/502_8"]
    assert run.report["notes"] == [] and run.report["rejected_fraction"] == 0.0


def test_symbolic_links_are_rejected_never_followed(tmp_path):
    outside = tmp_path / "outside" / "secret_9.txt"
    outside.parent.mkdir(parents=True)
    outside.write_text("A secret outside the data folder that must never become a review.")
    base = _aclimdb(tmp_path)
    (base / "train" / "pos" / "50_9.txt").symlink_to(outside)
    # The kind an archive leaves: a relative link that pointed "inside" before the folder moved.
    (base / "train" / "neg" / "51_1.txt").symlink_to(Path("..") / "pos" / "0_8.txt")
    (base / "test" / "neg" / "52_1.txt").symlink_to(tmp_path / "nowhere.txt")       # dangling
    run = _run(tmp_path, base)
    assert _table(run) == (17, 14, 3, 0, 0)
    assert run.rejected() == [("aclImdb/test/neg/52_1.txt", "symbolic link"),
                              ("aclImdb/train/neg/51_1.txt", "symbolic link"),
                              ("aclImdb/train/pos/50_9.txt", "symbolic link")]
    assert not any("secret" in text for text in run.texts())
    assert run.report["rejected_by_reason"] == {"symbolic link": 3}


def test_files_outside_pos_and_neg_are_counted_as_ignored(tmp_path):
    base = _aclimdb(tmp_path, {"README": "about the data", "train/urls_pos.txt": "http://x",
                               "test/labeledBow.feat": "0 0:1", "train/pos/extra/7_9.txt": "nested, not a review",
                               "train/unsup/0_0.txt": "unlabeled: never read, never counted"})
    run = _run(tmp_path, base)
    assert _table(run) == (18, 14, 0, 0, 4)
    assert run.report["ignored"]["examples"] == ["README", "test/labeledBow.feat", "train/pos/extra/7_9.txt",
                                                 "train/urls_pos.txt"]
    assert not any(text.startswith(("nested", "unlabeled")) for text in run.texts())


def test_a_rating_that_contradicts_its_folder_is_rejected_naming_the_file(tmp_path):
    base = _aclimdb(tmp_path, {"train/neg/123_9.txt": "Rated nine yet filed as negative.",
                               "train/pos/124_5.txt": "Rated five, neither folder's.",
                               "test/pos/125_7.txt": "Seven is positive: fine."})
    run = _run(tmp_path, base)
    assert _table(run) == (17, 15, 2, 0, 0)
    assert run.rejected() == [("aclImdb/train/neg/123_9.txt", "rating contradicts folder"),
                              ("aclImdb/train/pos/124_5.txt", "rating contradicts folder")]
    details = {os.path.basename(row["source"]): row["detail"] for row in run.report["rejected_examples"]}
    assert "neg/123_9.txt has rating 9" in details["123_9.txt"] and "1-4" in details["123_9.txt"]
    assert "test/pos/125_7" in run.ids("test")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_a_missing_test_folder_is_said_and_the_run_goes_on(tmp_path):
    base = _aclimdb(tmp_path, n_test=0)
    logger, handler = logging.getLogger("imdb.example_gen"), _Records()
    logger.addHandler(handler)
    try:
        run = _run(tmp_path, base)
    finally:
        logger.removeHandler(handler)
    assert _table(run) == (10, 10, 0, 0, 0)
    assert run.split_names == ["train", "eval"] and run.report["notes"] == [NO_TEST_NOTE]
    assert any(record.levelno == logging.WARNING and NO_TEST_NOTE in record.getMessage()
               for record in handler.records)
    assert not (tmp_path / "out" / "examples" / "Split-test").exists()


def test_a_review_over_max_review_bytes_is_rejected_not_truncated(tmp_path):
    at_bound = ("Just fits. " * 400)[:MAX_BYTES]
    base = _aclimdb(tmp_path, {"train/pos/60_9.txt": "Far too long. " * 400,
                               "train/pos/61_9.txt": at_bound})
    run = _run(tmp_path, base)
    assert _table(run) == (16, 15, 1, 0, 0)
    assert run.rejected() == [("aclImdb/train/pos/60_9.txt", "too large")]
    assert at_bound in run.texts() and not any(text.startswith("Far too long") for text in run.texts())


def test_duplicates_within_train_keep_one_copy_the_smallest_path(tmp_path):
    base = _aclimdb(tmp_path, {"train/pos/1000_9.txt": "Great film.<br /><br />Loved   IT.",
                               "train/pos/1001_10.txt": "great film. loved it.\n",
                               "train/pos/1002_8.txt": "GREAT film.<br/>loved it.",
                               "train/pos/1003_8.txt": "Great film. Loved it!"})   # differs: kept
    run = _run(tmp_path, base)
    assert _table(run) == (18, 16, 0, 2, 0)
    dropped = run.report["duplicates_dropped"]
    assert dropped["by_kind"] == {"within_split": 2}
    assert sorted(os.path.basename(row["dropped"]) for row in dropped["examples"]) == ["1001_10.txt", "1002_8.txt"]
    assert {os.path.basename(row["kept"]) for row in dropped["examples"]} == {"1000_9.txt"}
    kept = [rid for split in ("train", "eval") for rid in run.ids(split) if rid.startswith("train/pos/100")]
    assert sorted(kept) == ["train/pos/1000_9", "train/pos/1003_8"]


def test_a_train_copy_of_a_test_text_is_dropped_and_the_test_copy_kept(tmp_path):
    leaked = "The leaked review: it sits in both folders, word for word."
    base = _aclimdb(tmp_path, {"test/pos/2000_9.txt": leaked, "test/pos/2001_9.txt": leaked.upper(),
                               "train/pos/2002_8.txt": leaked, "train/pos/2003_7.txt": f"  {leaked}  "})
    run = _run(tmp_path, base)
    assert _table(run) == (18, 15, 0, 3, 0)
    assert run.report["duplicates_dropped"]["by_kind"] == {"train_copy_of_test": 2, "within_split": 1}
    assert [text for text in run.texts() if imdb_reader.normalise_text(text) == imdb_reader.normalise_text(leaked)] \
        == [leaked]
    assert "test/pos/2000_9" in run.ids("test")
    assert not any(rid.startswith("train/pos/200") for split in ("train", "eval") for rid in run.ids(split))


def _conflicts(run: Run) -> Tuple[int, int, List[str]]:
    """(copies dropped for conflicting labels, texts, example paths relative to the data folder)."""
    conflicts = run.report["label_conflicts"]
    return conflicts["count"], conflicts["texts"], [where.split("/data/", 1)[-1] for where in conflicts["examples"]]


def test_a_text_under_both_labels_is_dropped_everywhere_not_kept_with_the_first_path(tmp_path, caplog):
    both = "Ambiguous review: filed as positive and as negative, word for word."
    twice = "Another text in both folders of train."
    base = _aclimdb(tmp_path, {"train/neg/4000_1.txt": both, "train/pos/4001_9.txt": both.upper(),
                               "test/pos/4002_8.txt": f" {both} ",            # and a test copy: dropped too
                               "train/neg/4003_2.txt": twice, "train/pos/4004_10.txt": twice,
                               "train/pos/4005_10.txt": twice.lower(),        # same label twice, still a conflict
                               "train/pos/4006_9.txt": "Great film.", "train/pos/4007_9.txt": "great film."})
    with caplog.at_level(logging.INFO, logger="imdb.example_gen"):
        run = _run(tmp_path, base)
    assert _table(run) == (22, 15, 0, 1, 0)   # 14 good + "Great film." kept; one duplicate dropped
    count, texts, examples = _conflicts(run)
    assert (count, texts) == (6, 2)
    assert examples == ["aclImdb/test/pos/4002_8.txt", "aclImdb/train/neg/4000_1.txt", "aclImdb/train/pos/4001_9.txt",
                        "aclImdb/train/neg/4003_2.txt", "aclImdb/train/pos/4004_10.txt"]
    assert run.report["duplicates_dropped"]["by_kind"] == {"within_split": 1}
    assert "labels_differ" not in run.report["duplicates_dropped"]
    for text in (both, twice):
        assert not [t for t in run.texts() if imdb_reader.normalise_text(t) == imdb_reader.normalise_text(text)]
    listed = [json.loads(line) for line in Path(run.report["label_conflicts"]["list"]).read_text().splitlines()]
    assert len(listed) == 6 and {row["label"] for row in listed} == {0, 1}
    messages = [record.getMessage() for record in caplog.records]
    assert any("1 duplicates dropped (1 within a split), conflicting labels dropped 6;" in m for m in messages)
    assert not any("{" in m for m in messages)
    assert any(m.startswith("dropped all 6 copies of 2 texts filed under both labels") for m in messages)


def test_conflicting_csv_rows_are_dropped_and_named_by_line(tmp_path):
    rows = _csv_rows(10) + [b'"Same words, opposite labels.",1', b'"same words,  opposite labels.",0']
    path = _write_csv(tmp_path / "data" / "train.csv", b"text,label", rows)
    run = _run(tmp_path, path)
    assert _table(run) == (12, 10, 0, 0, 0)
    assert _conflicts(run) == (2, 1, ["train.csv:12", "train.csv:13"])


def test_duplicate_kinds_are_logged_in_words(tmp_path, caplog):
    leaked = "The leaked review: it sits in both folders, word for word."
    base = _aclimdb(tmp_path, {"test/pos/2000_9.txt": leaked, "train/pos/2002_8.txt": leaked,
                               "train/pos/2003_8.txt": leaked.upper(), "test/neg/2004_2.txt": "Dull.",
                               "test/neg/2005_2.txt": "dull."})
    with caplog.at_level(logging.INFO, logger="imdb.example_gen"):
        run = _run(tmp_path, base)
    assert run.report["duplicates_dropped"]["by_kind"] == {"train_copy_of_test": 2, "within_split": 1}
    assert any("3 duplicates dropped (2 train copies of test reviews, 1 within a split), conflicting labels "
               "dropped 0;" in record.getMessage() for record in caplog.records)


def _old_split(review_id: str) -> str:
    """Where the previous reader put a train review: a hash of its id, not of its text."""
    bucket = int.from_bytes(hashlib.sha256(review_id.encode()).digest()[:8], "big") % 100
    return "eval" if bucket < EVAL_PERCENT else "train"


def test_duplicates_that_would_straddle_train_and_eval_land_once(tmp_path):
    ids = [f"{index}_9" for index in range(3000, 3100)]
    first = ids[0]
    other = next(i for i in ids if _old_split(f"train/pos/{i}") != _old_split(f"train/pos/{first}"))
    text = "One text, two files: by review id the copies would go to train and to eval."
    base = _aclimdb(tmp_path, {f"train/pos/{first}.txt": text, f"train/pos/{other}.txt": text.lower()})
    run = _run(tmp_path, base)
    assert _table(run) == (16, 15, 0, 1, 0)
    where = [split for split in ("train", "eval") for _, t, _ in run.splits[split]
             if imdb_reader.normalise_text(t) == imdb_reader.normalise_text(text)]
    assert where == [imdb_reader.output_split(imdb_reader.text_digest(text), "train", EVAL_PERCENT)]


# -- CSV -------------------------------------------------------------------------------------------

def test_excel_csv_with_bom_and_crlf_is_read_whole(tmp_path):
    path = _write_csv(tmp_path / "data" / "reviews.csv", b"\xef\xbb\xbftext,label", _csv_rows(10), b"\r\n")
    run = _run(tmp_path, path)
    assert _table(run) == (10, 10, 0, 0, 0)
    assert run.report["notes"] == ["a single CSV file: the run has no test split"]
    assert sorted(run.texts()) == sorted(f'Review {i}, with a comma and a "quote"' for i in range(10))
    assert sorted(run.ids("train") + run.ids("eval")) == sorted(f"train/csv/{line}" for line in range(2, 12))


def test_one_bad_byte_rejects_only_its_row(tmp_path):
    rows = _csv_rows(10)
    rows[3] = b'"Review 3 with a bad \xff byte",1'
    folder = tmp_path / "data"
    _write_csv(folder / "train.csv", b"text,label", rows)
    _write_csv(folder / "test.csv", b"text,label", _csv_rows(3, start=100))
    run = _run(tmp_path, folder)
    assert _table(run) == (13, 12, 1, 0, 0)
    assert run.rejected() == [("train.csv:5", "not UTF-8")]
    assert "train/csv/6" in run.ids("train") + run.ids("eval") and len(run.splits["test"]) == 3


def test_an_unbalanced_quote_is_rejected_at_its_line_and_the_rows_after_it_are_kept(tmp_path):
    rows = _csv_rows(8)
    rows[2] = b'"Review 2 opens a quote and never closes it,0'
    path = _write_csv(tmp_path / "data" / "train.csv", b"text,label", rows)
    run = _run(tmp_path, path)
    assert _table(run) == (8, 7, 1, 0, 0)
    assert run.rejected() == [("train.csv:4", "unbalanced quote")]
    assert "line 4" in run.report["rejected_examples"][0]["detail"]
    assert sorted(run.ids("train") + run.ids("eval")) == sorted(f"train/csv/{n}" for n in (2, 3, 5, 6, 7, 8, 9))


def test_bad_rows_are_rejected_alone_with_their_line_numbers(tmp_path):
    rows = _csv_rows(8) + [b"Rated two,2", b"Labelled in words,good", b"Three,fields,1", b'"   ",1',
                           ("x" * (MAX_BYTES + 1)).encode() + b",1", ("y" * MAX_BYTES).encode() + b",0"]
    path = _write_csv(tmp_path / "data" / "train.csv", b"text,label", rows)
    run = _run(tmp_path, path)
    assert _table(run) == (14, 9, 5, 0, 0)
    assert run.rejected() == [("train.csv:10", "bad label"), ("train.csv:11", "bad label"),
                              ("train.csv:12", "bad CSV row"), ("train.csv:13", "empty"),
                              ("train.csv:14", "too large")]
    assert "y" * MAX_BYTES in run.texts()


def test_a_corrupt_csv_gz_fails_in_one_sentence_naming_the_file(tmp_path):
    payload = gzip.compress(b"text,label\n" + b"\n".join(_csv_rows(200)) + b"\n")
    path = tmp_path / "data" / "train.csv.gz"
    path.parent.mkdir()
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(UserError) as raised:
        _run(tmp_path, path)
    message = str(raised.value)
    assert message.startswith(f"The compressed file {path} is corrupt or truncated") and "\n" not in message
    assert "while running" not in message and not (tmp_path / "out" / "report" / REPORT_FILE).exists()


# -- the checks themselves (no Beam) ---------------------------------------------------------------

def test_counts_that_do_not_add_up_fail_the_run():
    summary = {"seen": 10, "accepted": 7, "rejected": 1, "duplicates_dropped": {"count": 1, "by_kind": {}},
               "label_conflicts": {"count": 0, "texts": 0, "examples": [], "list": "c.jsonl"},
               "ignored": {"count": 0}, "examples_per_split": {"train": 6, "eval": 1}, "rejected_fraction": 0.1,
               "max_rejected_fraction": 1.0, "rejected_by_reason": {}, "rejected_list": "r.jsonl"}
    with pytest.raises(UserError, match=r"10 rows and files were seen but 7 accepted \+ 1 rejected \+ 1 "
                                        r"duplicates dropped \+ 0 conflicting labels dropped \+ 0 ignored = 9"):
        _check(summary, "report.json")
    _check({**summary, "accepted": 8, "examples_per_split": {"train": 7, "eval": 1}}, "report.json")


def test_normalisation_merges_only_exact_duplicates():
    same = ["Great film.<br /><br />Loved it.", "great film. loved it.", "GREAT\tfilm.<BR/>loved it.\n",
            "Great film.<br>Loved it.", "Great\u00a0film.  Loved it. "]
    assert len({imdb_reader.text_digest(text) for text in same}) == 1
    different = ["Great film. Loved it!", "Great film. Hated it.", "Great film, loved it.", "Greatfilm. Loved it."]
    assert len({imdb_reader.text_digest(text) for text in different + same[:1]}) == len(different) + 1
    assert imdb_reader.normalise_text("Cafe\u0301") == imdb_reader.normalise_text("caf\u00e9")   # NFC


def test_the_survivor_is_a_test_copy_then_the_smallest_source():
    copies = [imdb_reader.Review("t", 1, "train/csv/10", split="train", source="/d/train.csv", line=10),
              imdb_reader.Review("t", 1, "train/csv/9", split="train", source="/d/train.csv", line=9),
              imdb_reader.Review("t", 1, "test/pos/9_9", split="test", source="/d/test/pos/9_9.txt"),
              imdb_reader.Review("t", 1, "test/pos/10_9", split="test", source="/d/test/pos/10_9.txt")]
    ordered = sorted(copies, key=imdb_reader.survivor_key)
    assert [r.review_id for r in ordered] == ["test/pos/10_9", "test/pos/9_9", "train/csv/9", "train/csv/10"]


# -- the benchmark's deduplicated test figure -------------------------------------------------------

def _bench():
    spec = importlib.util.spec_from_file_location("bench_full_pipeline",
                                                  Path(__file__).resolve().parent.parent / "bench" / "full_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_scores_the_whole_and_the_deduplicated_test_split(tmp_path):
    bench = _bench()
    leaked = "Loved it, and it is in train as well."
    base = _aclimdb(tmp_path, {"test/pos/900_9.txt": leaked, "train/pos/901_9.txt": leaked.upper(),
                               "test/neg/902_1.txt": "Loved the poster only; repeated.",
                               "test/neg/903_2.txt": "loved the poster only;  repeated.",
                               "test/pos/904_9.txt": "Too long " * 1000})
    test = bench.read_split(str(base.parent), "test", MAX_BYTES)
    assert len(test) == 4 + 3
    kept, removed = bench.deduplicate_test(test, bench.read_split(str(base), "train", MAX_BYTES))
    assert removed == {"also_in_train": 1, "within_test": 1}
    assert sorted(r.review_id for r in kept) == ["test/neg/501_2", "test/neg/503_2", "test/neg/902_1",
                                                 "test/pos/500_8", "test/pos/502_8"]

    def predict(texts):   # "loved" means positive: wrong on the two "Loved the poster" negatives
        return [(0.9, 1) if "loved" in text.lower() else (0.1, 0) for text in texts]

    figures = bench.score_test_split(predict, str(base), MAX_BYTES)
    assert figures["test_reviews"] == 7 and figures["test_accuracy"] == round(5 / 7, 4)
    assert figures["dedup_test_reviews"] == 5 and figures["dedup_test_accuracy"] == round(4 / 5, 4)
    assert figures["dedup_removed"] == removed
