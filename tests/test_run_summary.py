"""run_summary.json's data part and the terminal summary, from an ingestion report (no pipeline run)."""
from pipeline.run_summary import data_summary, format_summary

INGESTION = {
    "seen": 50_000, "examples_per_split": {"train": 22_400, "eval": 2_500, "test": 24_598}, "rejected": 0,
    "rejected_by_reason": {}, "notes": [],
    "duplicates_dropped": {"count": 422, "by_kind": {"train_copy_of_test": 123, "within_split": 299},
                           "examples": [], "list": "d.jsonl"},
    "label_conflicts": {"count": 80, "texts": 40, "list": "c.jsonl",
                        "examples": ["aclImdb/train/neg/1_2.txt", "aclImdb/train/pos/1_9.txt", "aclImdb/train/neg/2_1.txt",
                                     "aclImdb/train/pos/2_8.txt", "aclImdb/test/neg/3_3.txt"]},
    "ignored": {"count": 0, "examples": []},
}


def test_the_data_summary_counts_conflicting_labels_apart_from_duplicates():
    data = data_summary(INGESTION)
    assert data["duplicates_dropped"] == 422 and data["label_conflicts"] == 80 and data["label_conflict_texts"] == 40
    assert data["label_conflict_examples"] == INGESTION["label_conflicts"]["examples"]
    assert data["duplicates_by_kind"] == {"train_copy_of_test": 123, "within_split": 299}


def test_the_terminal_summary_says_duplicates_and_conflicts_in_words():
    text = format_summary({"data": data_summary(INGESTION)})
    assert ("; duplicates dropped 422 (123 train copies of test reviews, 299 within a split); "
            "conflicting labels dropped 80; other files ignored 0") in text
    assert "{" not in text
    assert ("  note: 80 reviews dropped because their text is filed under both labels (40 texts), none trained "
            "with either label; e.g. aclImdb/train/neg/1_2.txt, aclImdb/train/pos/1_9.txt") in text


def test_an_older_ingestion_report_without_conflicts_still_reads():
    old = {k: v for k, v in INGESTION.items() if k != "label_conflicts"}
    data = data_summary(old)
    assert data["label_conflicts"] == 0 and data["label_conflict_examples"] == []
    text = format_summary({"data": data})
    assert "conflicting labels dropped 0" in text and "note:" not in text
