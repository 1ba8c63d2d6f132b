"""`predict` picks the newest version that loads, says so when none does, and reads any bytes on stdin."""
import io
import logging

import pytest

from models.errors import UserError
from pipeline import predict
from test_serving_dir import plant, tiny_models  # noqa: F401  (the shared module-scoped fixture)


def scores(predictor, texts=("a review",)):
    return [round(p, 3) for p, _ in predictor.predict(list(texts))]


def test_uses_the_newest_version_that_loads(tmp_path, tiny_models, caplog):
    plant(tmp_path, 100, tiny_models(0.2))
    plant(tmp_path, 200, tiny_models(0.7))
    assert scores(predict.Predictor.newest(str(tmp_path))) == [0.7]
    (tmp_path / "200" / "saved_model.pb").write_bytes(b"")  # the incident of issue 9
    plant(tmp_path, 300, tiny_models(0.9), marker=False, empty_graph=True)  # an older release's damaged push
    with caplog.at_level(logging.WARNING):
        predictor = predict.Predictor.newest(str(tmp_path))
    assert scores(predictor) == [0.2] and predictor.model_dir == str(tmp_path / "100")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and "version 300" in warnings[0] and "incomplete" in warnings[0]
    assert "version 200" in warnings[1] and "does not load" in warnings[1]
    assert "version 100" in warnings[2]  # ... and which version answers instead


def test_when_every_version_is_broken_it_says_so_in_one_sentence(tmp_path, tiny_models):
    plant(tmp_path, 100, tiny_models(0.2), empty_graph=True)
    plant(tmp_path, 200, tiny_models(0.7), empty_graph=True)
    with pytest.raises(UserError) as error:
        predict.Predictor.newest(str(tmp_path))
    message = str(error.value)
    assert message.startswith(f"None of the 2 pushed versions in {tmp_path} (200, 100) loads")
    assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")


def test_nothing_pushed_or_no_folder(tmp_path, tiny_models):
    with pytest.raises(UserError, match="No serving folder"):
        predict.Predictor.newest(str(tmp_path / "missing"))
    plant(tmp_path, 100, tiny_models(0.2), marker=False, empty_graph=True)  # not a complete version
    with pytest.raises(UserError, match="No pushed model in .*: no blessed model has been pushed yet"):
        predict.Predictor.newest(str(tmp_path))
    with pytest.raises(UserError, match="No pushed model"):
        predict.newest_model_dir(str(tmp_path))


def test_invalid_utf8_on_stdin_is_replaced_with_one_warning(tmp_path, tiny_models, caplog):
    plant(tmp_path, 100, tiny_models(0.6))
    lines = [b"a good film", b"bad \xff byte", b"", b"caf\xc3\xa9 is fine", b"\xc3\x28 broken start",
             b"ok\r"] + [b"more \xfe"] * 5
    stdin = io.TextIOWrapper(io.BytesIO(b"\n".join(lines) + b"\n"), encoding="utf-8")  # like sys.stdin
    with caplog.at_level(logging.WARNING, logger="imdb.predict"):
        results = list(predict.Predictor.newest(str(tmp_path)).predict_stream(predict.read_reviews(stdin)))
    texts = [text for text, _, _ in results]
    assert texts == ["a good film", "bad \ufffd byte", "café is fine", "\ufffd( broken start", "ok"] + ["more \ufffd"] * 5
    assert [round(p, 3) for _, p, _ in results] == [0.6] * 10
    assert [r.getMessage() for r in caplog.records if r.name == "imdb.predict"] == ["7 input lines were not valid UTF-8 (lines 2, 5, 7, 8, 9, ...); "
                               "the bad bytes were replaced by U+FFFD"]


def test_text_streams_without_bytes_and_one_bad_line(caplog):
    assert list(predict.read_reviews(io.StringIO("one\n\n  \ntwo"))) == ["one", "two"]
    with caplog.at_level(logging.WARNING, logger="imdb.predict"):
        assert list(predict.read_reviews(io.BytesIO(b"x\xffy\n"))) == ["x\ufffdy"]
    assert [r.getMessage() for r in caplog.records if r.name == "imdb.predict"] == ["1 input line was not valid UTF-8 (line 1); the bad bytes were replaced by U+FFFD"]
