"""ImdbExampleGen's reading rules, and its executor on a tiny corpus with broken files."""
import csv
import gzip
import io
import json
import os
import random

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components import imdb_reader
from components.artifacts import IngestionReport
from components.imdb_example_gen import REPORT_FILE, Executor
from corpus import write_aclimdb
from models.errors import UserError


def test_detects_aclimdb_folder_its_parent_and_csvs(tmp_path):
    base = write_aclimdb(tmp_path / "d", n_train=4, n_test=2)
    assert imdb_reader.detect_layout(str(base)).kind == "aclimdb"
    assert [s for s, _ in imdb_reader.detect_layout(str(base.parent)).sources] == ["train", "test"]
    csv_file = tmp_path / "train.csv"
    csv_file.write_text("text,label\nfine,1\n")
    assert imdb_reader.detect_layout(str(csv_file)).kind == "csv"
    assert imdb_reader.detect_layout(str(tmp_path)).sources == (("train", str(csv_file)),)
    with pytest.raises(UserError, match="No IMDB reviews found"):
        imdb_reader.detect_layout(str(tmp_path / "d" / "aclImdb" / "train" / "pos"))
    with pytest.raises(UserError, match="does not exist"):
        imdb_reader.detect_layout(str(tmp_path / "nope.csv"))


def test_listing_skips_unsup_ignores_strays_and_never_follows_links(tmp_path):
    base = write_aclimdb(tmp_path, n_train=4, n_test=0)
    (base / "train" / "unsup").mkdir()
    (base / "train" / "unsup" / "0_0.txt").write_text("unlabeled")
    (base / "imdb.vocab").write_text("the\n")
    (base / "train" / "urls_pos.txt").write_text("http://x")
    (base / "train" / "pos" / "deeper").mkdir()
    (base / "train" / "pos" / "deeper" / "9_9.txt").write_text("nested")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "5_9.txt").write_text("outside")
    (base / "train" / "pos" / "linked_dir").symlink_to(outside)
    (base / "train" / "pos" / "7_9.txt").symlink_to(outside / "5_9.txt")
    listing = imdb_reader.list_aclimdb(str(base), ["train"])
    names = sorted(os.path.relpath(path, base) for path, _, _ in listing.reviews)
    made = sorted(str(p.relative_to(base)) for d in ("pos", "neg") for p in base.glob(f"train/{d}/*.txt"))
    assert len(made) == 5 and names == sorted(made + ["train/pos/linked_dir"])
    assert {label for path, label, _ in listing.reviews if "/pos/" in path} == {1}
    assert listing.ignored == ("imdb.vocab", "train/pos/deeper/9_9.txt", "train/urls_pos.txt")
    assert {split for _, _, split in listing.reviews} == {"train"}


def test_review_file_parsing_and_rejections(tmp_path):
    good = tmp_path / "12_8.txt"
    good.write_text("A fine film.<br />Really.", encoding="utf-8")
    review = imdb_reader.read_review_file(str(good), 1, "train", 100)
    assert review == imdb_reader.Review("A fine film.<br />Really.", 1, "train/pos/12_8", 8, "train", str(good))
    bom = tmp_path / "15_9.txt"
    bom.write_bytes(b"\xef\xbb\xbfWith a BOM")
    assert imdb_reader.read_review_file(str(bom), 1, "train", 100).text == "With a BOM"
    latin1 = tmp_path / "13_2.txt"
    latin1.write_bytes("caf\xe9 terrible".encode("latin-1"))
    empty = tmp_path / "14_3.txt"
    empty.write_text("  \n")
    badname = tmp_path / "notes.txt"
    badname.write_text("hello")
    contradicts = tmp_path / "16_9.txt"
    contradicts.write_text("nine stars in neg/")
    big = tmp_path / "17_1.txt"
    big.write_text("x" * 101)
    exact = tmp_path / "18_1.txt"
    exact.write_text("x" * 100)
    link = tmp_path / "19_1.txt"
    link.symlink_to(exact)
    rejected = [imdb_reader.read_review_file(str(p), 0, "train", 100)
                for p in (latin1, empty, badname, contradicts, big, link)]
    assert [r.reason for r in rejected] == ["not UTF-8", "empty", "bad file name", "rating contradicts folder",
                                            "too large", "symbolic link"]
    assert all(r.reason in imdb_reader.REASONS for r in rejected)
    assert "neg/16_9.txt has rating 9" in rejected[3].detail
    assert imdb_reader.read_review_file(str(exact), 0, "train", 100).text == "x" * 100


@pytest.mark.parametrize("label, rating, ok", [(0, 1, True), (0, 4, True), (0, 5, False), (0, 7, False),
                                               (1, 6, False), (1, 7, True), (1, 10, True), (1, 11, False),
                                               (0, 0, False)])
def test_rating_must_match_its_folder(tmp_path, label, rating, ok):
    path = tmp_path / f"1_{rating}.txt"
    path.write_text("text")
    record = imdb_reader.read_review_file(str(path), label, "test", 100)
    assert isinstance(record, imdb_reader.Review) == ok


def test_eval_split_is_by_text_deterministic_and_about_the_configured_share():
    digests = [imdb_reader.text_digest(f"review number {i}") for i in range(5000)]
    first = [imdb_reader.output_split(d, "train", 10) for d in digests]
    assert first == [imdb_reader.output_split(d, "train", 10) for d in digests]
    share = first.count("eval") / len(first)
    assert 0.08 < share < 0.12
    assert imdb_reader.output_split(digests[0], "test", 10) == "test"
    # Copies that differ only in case, <br /> and spacing always share a split.
    for i in range(200):
        a, b = f"Review {i}.<br /><br />The END", f"review {i}.  the end "
        assert imdb_reader.output_split(imdb_reader.text_digest(a), "train", 50) == \
            imdb_reader.output_split(imdb_reader.text_digest(b), "train", 50)


def _csv(tmp_path, data: bytes, name="reviews.csv"):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    reader = imdb_reader.CsvReviews(str(path), "train", 1000)
    records = list(reader)
    return reader, [(r.line, r.text, r.label) if isinstance(r, imdb_reader.Review)
                    else (int(r.source.rsplit(":", 1)[1]), r.reason) for r in records]


def test_csv_rows_bad_rows_are_rejected_alone(tmp_path):
    reader, rows = _csv(tmp_path, b'text,label\r\n"multi\r\nline, quoted",1\r\nmeh,2\r\n,0\r\nok,0\r\n'
                                  b"bad \xff byte,1\r\nthree,fields,1\r\n\r\nlast,1", "reviews.csv.gz")
    assert rows == [(2, "multi\r\nline, quoted", 1), (4, "bad label"), (5, "empty"), (6, "ok", 0),
                    (7, "not UTF-8"), (8, "bad CSV row"), (10, "last", 1)]
    assert reader.rows_seen == 7
    wrong_header = tmp_path / "x.csv"
    wrong_header.write_text("review,sentiment\nhi,1\n")
    with pytest.raises(UserError, match="text and label"):
        list(imdb_reader.read_csv_reviews(str(wrong_header), "train", 1000))


def test_csv_labels_as_people_write_them(tmp_path):
    """1/0, pos/neg and positive/negative, in any case and with spaces around; anything else is
    rejected with a detail that lists exactly what is accepted."""
    rows = [("one", "1", 1), ("zero", "0", 0), ("p", "pos", 1), ("n", "neg", 0), ("P", "Positive", 1),
            ("N", "NEGATIVE", 0), ("spaced", "  pos ", 1), ("mixed", "nEg", 0)]
    data = "text,label\n" + "".join(f"{text},{label}\n" for text, label, _ in rows)
    data += "stars,2\nwords,good\nblank,\nplus,+1\n"
    path = tmp_path / "labels.csv"
    path.write_text(data)
    records = list(imdb_reader.read_csv_reviews(str(path), "train", 1000))
    accepted = [(r.text, r.label) for r in records if isinstance(r, imdb_reader.Review)]
    assert accepted == [(text, label) for text, _, label in rows]
    rejected = [r for r in records if isinstance(r, imdb_reader.Rejected)]
    assert [(r.source.rsplit(":", 1)[1], r.reason) for r in rejected] == [
        ("10", "bad label"), ("11", "bad label"), ("12", "bad label"), ("13", "bad label")]
    assert rejected[1].detail == ("label 'good' is not one of the accepted labels: 1, pos or positive for a "
                                  "positive review and 0, neg or negative for a negative one (any case)")


def test_a_runaway_quote_is_still_found_when_labels_are_words(tmp_path):
    _, rows = _csv(tmp_path, b'text,label\nfine,positive\n"unclosed review,neg\nnext,Pos\n')
    assert rows == [(2, "fine", 1), (3, "unbalanced quote"), (4, "next", 1)]


def test_csv_bom_and_label_first_header(tmp_path):
    _, rows = _csv(tmp_path, b'\xef\xbb\xbflabel,text\n1,"fine, really"\n0,meh\n')
    assert rows == [(2, "fine, really", 1), (3, "meh", 0)]


@pytest.mark.parametrize("data, expected", [
    # the rest of the opening line completes a row: the quote is a runaway
    (b'text,label\nfine,1\n"unclosed review,1\nnext,0\n"quoted ""x"" ok",1\nlast,0\n',
     [(2, "fine", 1), (3, "unbalanced quote"), (4, "next", 0), (5, 'quoted "x" ok', 1), (6, "last", 0)]),
    # never closed
    (b'text,label\nfine,1\n"unclosed at the end,1', [(2, "fine", 1), (3, "unbalanced quote")]),
    # a later line inside the field reads as a row
    (b'label,text\n1,"unclosed\n0,next\n1,"ok\nmulti"\n',
     [(2, "unbalanced quote"), (3, "next", 0), (4, "ok\nmulti", 1)]),
    # an ordinary multi-line field is not a runaway
    (b'text,label\n"first line,\nsecond line",1\nnext,0\n', [(2, "first line,\nsecond line", 1), (4, "next", 0)]),
])
def test_csv_unbalanced_quote_is_rejected_at_its_line_and_reading_resumes(tmp_path, data, expected):
    _, rows = _csv(tmp_path, data)
    assert rows == expected


def test_csv_scanner_agrees_with_the_csv_module_on_well_formed_files(tmp_path):
    rng = random.Random(1)
    pieces = ["a", "b", " ", ",", '"', "\n", "\r\n", "\u00e9", "<br />", "'"]
    rows = [("".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))) + "x", str(rng.randint(0, 1)))
            for _ in range(1000)]
    for newline in ("\n", "\r\n"):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=newline).writerows([("text", "label")] + rows)
        _, parsed = _csv(tmp_path, buffer.getvalue().encode("utf-8"))
        assert [(text, str(label)) for _, text, label in parsed] == rows


def test_a_corrupt_gzip_is_one_sentence_naming_the_file(tmp_path):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(b"text,label\n" + b"fine,1\n" * 1000)[:40])
    with pytest.raises(UserError, match=r"^The compressed file .*train\.csv\.gz is corrupt or truncated"):
        list(imdb_reader.read_csv_reviews(str(path), "train", 1000))
    not_gzip = tmp_path / "other.csv.gz"
    not_gzip.write_bytes(b"text,label\nplain,1\n")
    with pytest.raises(UserError, match="is corrupt or truncated"):
        list(imdb_reader.read_csv_reviews(str(not_gzip), "train", 1000))


def test_example_features():
    example = imdb_reader.to_example(imdb_reader.Review("word " * 150, 1, "train/pos/1_9", 9))
    feature = example.features.feature
    assert feature["label"].int64_list.value == [1]
    assert feature["rating"].int64_list.value == [9]
    assert feature["length_bucket"].bytes_list.value == [b"100-199"]
    assert feature["review_id"].bytes_list.value == [b"train/pos/1_9"]


def _run_executor(data_root, out_dir, max_rejected_fraction):
    examples, report = standard_artifacts.Examples(), IngestionReport()
    examples.uri, report.uri = str(out_dir / "examples"), str(out_dir / "report")
    os.makedirs(report.uri, exist_ok=True)
    Executor().Do({}, {"examples": [examples], "ingestion_report": [report]},
                  {"input_base": str(data_root), "eval_percent": 20, "max_rejected_fraction": max_rejected_fraction,
                   "max_review_bytes": 64_000})
    return examples, report


def test_executor_writes_splits_and_reports_broken_files(tmp_path):
    base = write_aclimdb(tmp_path / "data", n_train=40, n_test=10)
    (base / "train" / "neg" / "900_1.txt").write_bytes(b"\xff\xfe broken bytes")
    (base / "train" / "pos" / "901_10.txt").write_text("")
    examples, report = _run_executor(base, tmp_path / "out", max_rejected_fraction=0.1)
    counts = {}
    for split in artifact_utils.decode_split_names(examples.split_names):
        files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz"))
        counts[split] = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    assert counts["test"] == 10 and counts["train"] + counts["eval"] == 40 and counts["eval"] > 0
    summary = json.loads((tmp_path / "out" / "report" / REPORT_FILE).read_text())
    assert summary["rejected"] == 2 and summary["examples_per_split"] == counts
    assert summary["seen"] == 52 and summary["accepted"] == 50
    assert summary["rejected_by_reason"] == {"empty": 1, "not UTF-8": 1}
    listed = (tmp_path / "out" / "report" / "rejected.jsonl").read_text().splitlines()
    assert sorted(os.path.basename(json.loads(line)["source"]) for line in listed) == ["900_1.txt", "901_10.txt"]


def test_executor_fails_when_too_many_files_are_broken(tmp_path):
    base = write_aclimdb(tmp_path / "data", n_train=20, n_test=0)
    for index in range(3):
        (base / "train" / "pos" / f"90{index}_9.txt").write_bytes(b"\xff")
    with pytest.raises(UserError, match=r"3 of 23 reviews \(13.0%\) were rejected \(not UTF-8: 3\), more than the allowed 5.0% \(--max-rejected-fraction\)"):
        _run_executor(base, tmp_path / "out", max_rejected_fraction=0.05)


def test_duplicate_kinds_in_words():
    assert imdb_reader.duplicates_in_words({"train_copy_of_test": 123, "within_split": 299}) \
        == "123 train copies of test reviews, 299 within a split"
    assert imdb_reader.duplicates_in_words({"train_copy_of_test": 1}) == "1 train copy of a test review"
    assert imdb_reader.duplicates_in_words({}) == ""
