"""ImdbExampleGen's reading rules, and its executor on a tiny corpus with broken files."""
import gzip
import json
import os

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


def test_unsup_folder_is_never_listed(tmp_path):
    base = write_aclimdb(tmp_path, n_train=4, n_test=0)
    (base / "train" / "unsup").mkdir()
    (base / "train" / "unsup" / "0_0.txt").write_text("unlabeled")
    paths = [p for p, _ in imdb_reader.list_review_files(str(base / "train"))]
    assert len(paths) == 4 and not any("/unsup/" in p for p in paths)


def test_review_file_parsing_and_rejections(tmp_path):
    good = tmp_path / "12_8.txt"
    good.write_text("A fine film.<br />Really.", encoding="utf-8")
    review = imdb_reader.read_review_file(str(good), 1, "train")
    assert review == imdb_reader.Review("A fine film.<br />Really.", 1, "train/pos/12_8", 8)
    latin1 = tmp_path / "13_2.txt"
    latin1.write_bytes("caf\xe9 terrible".encode("latin-1"))
    empty = tmp_path / "14_3.txt"
    empty.write_text("  \n")
    badname = tmp_path / "notes.txt"
    badname.write_text("hello")
    reasons = [imdb_reader.read_review_file(str(p), 0, "train").reason for p in (latin1, empty, badname)]
    assert reasons[0].startswith("not valid UTF-8")
    assert reasons[1] == "empty review"
    assert "file name" in reasons[2]


def test_eval_split_is_deterministic_and_about_the_configured_share():
    ids = [f"train/pos/{i}_8" for i in range(5000)]
    first = [imdb_reader.output_split(i, "train", 10) for i in ids]
    assert first == [imdb_reader.output_split(i, "train", 10) for i in ids]
    share = first.count("eval") / len(first)
    assert 0.08 < share < 0.12
    assert imdb_reader.output_split("test/pos/1_9", "test", 10) == "test"


def test_csv_rows_bad_labels_are_rejected_not_fatal(tmp_path):
    path = tmp_path / "reviews.csv.gz"
    path.write_bytes(gzip.compress(b'text,label\r\n"multi\r\nline, quoted",1\r\nmeh,2\r\n,0\r\nok,0\r\n'))
    records = list(imdb_reader.read_csv_reviews(str(path), "train"))
    assert [type(r).__name__ for r in records] == ["Review", "Rejected", "Rejected", "Review"]
    assert records[0].text == "multi\r\nline, quoted" and records[0].label == 1
    assert "label '2'" in records[1].reason
    wrong_header = tmp_path / "x.csv"
    wrong_header.write_text("review,sentiment\nhi,1\n")
    with pytest.raises(UserError, match="text and label"):
        list(imdb_reader.read_csv_reviews(str(wrong_header), "train"))


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
                  {"input_base": str(data_root), "eval_percent": 20, "max_rejected_fraction": max_rejected_fraction})
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
    assert sorted(summary["rejected_by_reason"]) == ["empty review", "not valid UTF-8"]
    listed = (tmp_path / "out" / "report" / "rejected.jsonl").read_text().splitlines()
    assert sorted(os.path.basename(json.loads(line)["source"]) for line in listed) == ["900_1.txt", "901_10.txt"]


def test_executor_fails_when_too_many_files_are_broken(tmp_path):
    base = write_aclimdb(tmp_path / "data", n_train=20, n_test=0)
    for index in range(3):
        (base / "train" / "pos" / f"90{index}_9.txt").write_bytes(b"\xff")
    with pytest.raises(UserError, match=r"3 of 23 reviews \(13.0%\) could not be read"):
        _run_executor(base, tmp_path / "out", max_rejected_fraction=0.05)
