"""`predict` keeps one output row per input line, and says when a review's score means little (issue 21, item 4)."""
import io
import json
import logging

import pytest

from pipeline import cli, predict
from test_serving_dir import plant, tiny_models  # noqa: F401  (the shared module-scoped fixture)

# Six lines in (two blank, one emoji-only, one markup-only): six rows out, in order.
LINES = ["A good film.", "", "\U0001F600\U0001F44D", "   ", "<br /><br />", "ok then"]
EMPTY_SCORE = 0.556  # a tiny model scores every review the same, as a real one scores every token-less review


@pytest.fixture
def serving(tmp_path, tiny_models):
    plant(tmp_path / "serving", 100, tiny_models(EMPTY_SCORE))
    return tmp_path / "serving"


def _warnings(err):
    """The console's warning lines on stderr (it prefixes each with "  warning: ")."""
    return [line.split("warning: ", 1)[1] for line in err.splitlines() if "warning: " in line]


def _predict(serving, monkeypatch, capfd, *extra):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(LINES) + "\n"))
    assert cli.main(["predict", "--serving-dir", str(serving), *extra]) == 0
    out, err = capfd.readouterr()
    return out.splitlines(), _warnings(err)


def test_plain_output_has_one_row_per_input_line(serving, monkeypatch, capfd):
    rows, warnings = _predict(serving, monkeypatch, capfd)
    assert rows == ["0.5560\tpositive\tA good film.",
                    "-\t-\t(blank line: not scored)",
                    "0.5560\tpositive\t\U0001F600\U0001F44D",
                    "-\t-\t(blank line: not scored)",
                    "0.5560\tpositive\t<br /><br />",
                    "0.5560\tpositive\tok then"]
    assert warnings == [f"line {n}: no word left after clean-up: scored as the empty review (probability 0.5560)"
                        for n in (3, 5)]


def test_json_output_marks_blank_and_wordless_lines(serving, monkeypatch, capfd):
    rows, warnings = _predict(serving, monkeypatch, capfd, "--json")
    assert len(warnings) == 2
    records = [json.loads(row) for row in rows]
    assert [r["text"] for r in records] == LINES
    blank = {"probability": None, "label": None, "note": "blank line: not scored"}
    assert {k: records[1][k] for k in blank} == blank and records[3]["text"] == "   " and records[3]["note"] == blank["note"]
    for index in (2, 4):
        assert records[index]["probability"] == EMPTY_SCORE and records[index]["label"] == 1
        assert records[index]["note"] == "no word left after clean-up: scored as the empty review"
    assert "note" not in records[0] and "note" not in records[5] and records[5]["probability"] == EMPTY_SCORE


def test_arguments_are_named_by_position(serving, capfd):
    assert cli.main(["predict", "--serving-dir", str(serving), "fine", "", "!!!"]) == 0
    out, err = capfd.readouterr()
    assert out.splitlines()[1] == "-\t-\t(blank line: not scored)" and len(out.splitlines()) == 3
    assert _warnings(err) == [
        "argument 3: no word left after clean-up: scored as the empty review (probability 0.5560)"]


def test_a_review_with_no_word_in_the_served_vocabulary_is_warned_about(tmp_path, tiny_models, caplog):
    folder = plant(tmp_path / "serving", 100, tiny_models(0.3))
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "vocabulary").write_text("good\nfilm\nbad\n")  # as Transform's vocabulary is saved
    predictor = predict.Predictor.newest(str(tmp_path / "serving"))
    assert predictor.vocabulary == {"good", "film", "bad"}
    with caplog.at_level(logging.WARNING, logger="imdb.predict"):
        rows = list(predictor.predict_rows(["A GOOD one", "zzyzx qwertyuiop", "", "..."], batch_size=1))
    assert [(r.number, r.probability is None, r.note) for r in rows] == [
        (1, False, None),
        (2, False, "no word in the model's vocabulary: scored on unknown words only"),
        (3, True, "blank line: not scored"),
        (4, False, "no word left after clean-up: scored as the empty review")]
    assert [r.getMessage() for r in caplog.records if r.name == "imdb.predict"] == [
        "line 2: no word in the model's vocabulary: scored on unknown words only (probability 0.3000)",
        "line 4: no word left after clean-up: scored as the empty review (probability 0.3000)"]


def test_rows_stay_in_order_across_batches(tmp_path, tiny_models):
    plant(tmp_path, 100, tiny_models(0.7))
    lines = ["a", "", "b", "c", "", "", "d", "e", ""]
    rows = list(predict.Predictor.newest(str(tmp_path)).predict_rows(lines, batch_size=2))
    assert [r.text for r in rows] == lines and [r.number for r in rows] == list(range(1, 10))
    assert [r.probability is None for r in rows] == [not line for line in lines]
