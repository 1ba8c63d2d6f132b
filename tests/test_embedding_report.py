"""The embedding report on synthetic embeddings whose sentiment direction is known."""
from __future__ import annotations

import base64
import html.parser
import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest

from models import embedding_report as er

POSITIVE = ["great", "excellent", "wonderful", "best", "perfect", "loved", "awesome", "amazing", "superb"]
NEGATIVE = ["worst", "awful", "waste", "boring", "terrible", "poor", "bad", "dull", "stupid"]
FILLER = [f"word{i}" for i in range(60)]
VOCAB = ["the", "and", "good", "not", "movie"] + POSITIVE + NEGATIVE + FILLER
DIM = 3
OOV = 4


def _embedding(x_of, y_of=lambda w: 0.0, filler_spread=0.4, seed=0):
    """Row 0 padding, row i+1 = VOCAB[i] at (x, y, noise), then OOV rows far off (must be ignored).

    The neutral filler words scatter along x by `filler_spread`, as neutral words do in a real table.
    """
    rng = np.random.default_rng(seed)
    rows = [np.zeros(DIM)]
    for word in VOCAB:
        spread = filler_spread if word in FILLER else 0.05
        rows.append([x_of(word) + rng.normal(0, spread), y_of(word) + rng.normal(0, 0.05), rng.normal(0, 0.3)])
    rows += [[100.0, 100.0, 100.0]] * OOV
    return np.array(rows, dtype=np.float32)


def sentiment(word):
    return 2.0 if word in POSITIVE else -2.0 if word in NEGATIVE else 0.2 if word == "good" else 0.0


@pytest.fixture(scope="module")
def seed_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return er.write_report(_embedding(sentiment), VOCAB, str(out), top_k=5)


def test_seed_based_ordering_and_probes(seed_report):
    report = seed_report
    assert report["method"] == "seed-based"
    assert len(report["most_positive"]) == len(report["most_negative"]) == 5
    assert {w for w, _ in report["most_positive"]} <= set(POSITIVE)
    assert {w for w, _ in report["most_negative"]} <= set(NEGATIVE)
    positions = [p for _, p in report["most_positive"]]
    assert positions == sorted(positions, reverse=True) and positions[-1] > 0
    positions = [p for _, p in report["most_negative"]]
    assert positions == sorted(positions) and positions[-1] < 0
    probes = report["probes"]
    assert set(probes) == set(er.DEFAULT_PROBES)
    for word in ("awesome", "amazing"):
        assert probes[word]["percentile"] > 85 and probes[word]["position"] > 1.5
    for word in ("awful", "terrible", "bad"):
        assert probes[word]["percentile"] < 15 and probes[word]["position"] < -1.5
    # "good" sits in the crowd of neutral words, well below every clearly positive word.
    assert 0 < probes["good"]["position"] < 0.6
    assert 40 < probes["good"]["percentile"] < 85
    assert probes["good"]["percentile"] < min(probes[w]["percentile"] for w in ("awesome", "amazing")) - 10
    assert probes["good"]["frequency_rank"] == 3 and probes["good"]["score"] is None


def test_files_written(seed_report):
    with open(seed_report["png"], "rb") as handle:
        png = handle.read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    with open(seed_report["html"], encoding="utf-8") as handle:
        page = handle.read()
    assert "data:image/png;base64," in page and "seed-based" in page
    for word in ("awesome", "terrible", "good", "not", seed_report["most_negative"][0][0]):
        assert f"{word}<" in page
    with open(seed_report["json"], encoding="utf-8") as handle:
        saved = json.load(handle)
    assert saved["most_positive"] == seed_report["most_positive"]
    assert saved["probes"] == seed_report["probes"]
    assert len(saved["words"]) == len(VOCAB) and len(saved["direction"]) == DIM


class _Page(html.parser.HTMLParser):
    """Tables (rows of cell texts), attributes of every tag and the text of a rendered page."""

    def __init__(self, page):
        super().__init__()
        self.tables, self.attrs, self.text, self._cell = [], [], [], None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.attrs.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell += data


def test_html_page_is_self_contained_escaped_and_holds_the_numbers(tmp_path):
    odd = "<i>x</i>&'\""
    vocab = [odd if w == "word3" else w for w in VOCAB]
    score = {w: 1 / (1 + np.exp(-sentiment(w))) for w in vocab}
    report = er.write_report(_embedding(sentiment), vocab, str(tmp_path), top_k=len(vocab),
                             probes=("awesome", odd, "zzz<missing>"), n_anchors=3,
                             score_fn=lambda words: np.array([score[w] for w in words]))
    with open(report["html"], encoding="utf-8") as handle:
        page = handle.read()
    assert "<i>" not in page and "zzz<" not in page  # words are escaped, not markup
    parsed = _Page(page)
    probes, most_positive, most_negative = parsed.tables
    expected_probes = [[w, f"{v['position']:+.3f}", f"{v['percentile']:.1f}", str(v["frequency_rank"]),
                        f"{v['score']:.3f}"] for w, v in report["probes"].items() if v is not None]
    assert probes[1:] == expected_probes + [["zzz<missing>", "not in the vocabulary"]]
    for table, items in ((most_positive, report["most_positive"]), (most_negative, report["most_negative"])):
        assert table[2:] == [[str(n), w, f"{p:+.3f}"] for n, (w, p) in enumerate(items, start=1)]
    assert odd in {row[1] for row in most_positive[2:]}
    text = " ".join("".join(parsed.text).split())
    assert f"model score over the non-anchor words: {report['heldout_correlation']:.3f}" in text
    assert "Anchors, positive: " + ", ".join(report["positive_anchors"]) in text
    assert f"minus the mean row of the {len(vocab)} most frequent words" in text
    assert "not independent ground truth" in text  # the model-scored caveat
    # Self-contained: the only resource is the chart, inlined as the PNG file's bytes.
    links = [(tag, a) for tag, a in parsed.attrs if {"src", "href"} & set(a)]
    assert [tag for tag, _ in links] == ["img"]
    prefix = "data:image/png;base64,"
    assert links[0][1]["src"].startswith(prefix)
    with open(report["png"], "rb") as handle:
        assert base64.b64decode(links[0][1]["src"][len(prefix):]) == handle.read()


def test_score_fn_defines_the_direction(tmp_path):
    # Seed words lie along y, the sentiment the "model" scores lies along x and leaves the seeds
    # neutral: the seed direction would miss awesome/awful, the model-scored one must not.
    seeds = set(er.POSITIVE_SEEDS) | set(er.NEGATIVE_SEEDS)
    truth = {w: (0.0 if w in seeds else sentiment(w)) for w in VOCAB}
    matrix = _embedding(lambda w: truth[w], lambda w: 2.0 if w in er.POSITIVE_SEEDS else
                        -2.0 if w in er.NEGATIVE_SEEDS else 0.0, filler_spread=0.05)
    calls = []

    def score_fn(words):
        calls.append(list(words))
        return 1 / (1 + np.exp(-np.array([truth[w] for w in words])))

    scored = er.write_report(matrix, VOCAB, str(tmp_path / "scored"), top_k=3, score_fn=score_fn, n_anchors=2)
    seeded = er.write_report(matrix, VOCAB, str(tmp_path / "seeded"), top_k=3)
    assert scored["method"] == "model-scored" and calls and set(calls[0]) == set(VOCAB)
    assert {w for w, _ in scored["most_positive"]} <= {"awesome", "amazing", "superb"}
    assert {w for w, _ in scored["most_negative"]} <= {"bad", "dull", "stupid"}
    assert scored["probes"]["awesome"]["percentile"] > 85 > seeded["probes"]["awesome"]["percentile"]
    assert scored["probes"]["terrible"]["score"] == pytest.approx(0.5)
    # 2 anchors a side out of 3 words scored +-2: the third ones (and "good") are held out and
    # must follow the direction.
    assert len(scored["positive_anchors"]) == len(scored["negative_anchors"]) == 2
    assert set(scored["positive_anchors"]) < {"awesome", "amazing", "superb"}
    assert scored["heldout_correlation"] > 0.8
    assert {w for w, _ in seeded["most_positive"]} <= set(er.POSITIVE_SEEDS)


def test_anchor_count_is_capped_for_small_vocabularies(tmp_path):
    report = er.write_report(_embedding(sentiment), VOCAB, str(tmp_path), score_fn=lambda ws: np.zeros(len(ws)))
    assert len(report["positive_anchors"]) == len(VOCAB) // 4  # 100 asked, a quarter of the words kept


def test_max_words_limits_the_ranking(tmp_path):
    report = er.write_report(_embedding(sentiment), VOCAB, str(tmp_path), top_k=50, max_words=10)
    assert report["n_words"] == 10 and len(report["most_positive"]) == 10
    assert {w for w, _ in report["most_positive"]} == set(VOCAB[:10])
    # Probes beyond the frequent words still get a position, ranked against the frequent ones.
    assert report["probes"]["terrible"]["percentile"] == 0.0


def test_missing_probes(tmp_path):
    report = er.write_report(_embedding(sentiment), VOCAB, str(tmp_path), probes=("awesome", "zzzmissing"))
    assert report["probes"]["zzzmissing"] is None and report["probes"]["awesome"] is not None
    text = er.format_report(report)
    assert "zzzmissing" in text and "awesome" in text
    none_there = er.write_report(_embedding(sentiment), VOCAB, str(tmp_path / "none"), probes=("xx", "yy"))
    assert none_there["probes"] == {"xx": None, "yy": None}
    assert os.path.getsize(none_there["png"]) > 0
    assert "xx" in open(none_there["html"], encoding="utf-8").read()


def test_format_report(seed_report):
    text = er.format_report(seed_report)
    assert seed_report["html"] in text and "seed-based" in text
    assert seed_report["most_positive"][0][0] in text and "awesome" in text
    assert len(text.splitlines()) <= 6


@pytest.mark.parametrize("matrix, vocab, message", [
    (np.zeros((5, 2)), VOCAB, "cannot hold"),
    (np.zeros((1 + len(VOCAB), 2)), ["x"] + VOCAB[1:], None),
    (np.zeros((4, 2)), ["the", "and", "movie"], "seed words"),
])
def test_bad_inputs(tmp_path, matrix, vocab, message):
    with pytest.raises(ValueError, match=message or "centroids coincide"):
        er.write_report(matrix, vocab, str(tmp_path))


def test_remote_out_dir_via_gfile():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    out = "ram://embedding_report_test/run"  # TF's in-memory filesystem stands in for gs://
    report = er.write_report(_embedding(sentiment), VOCAB, out, top_k=3)
    assert report["png"] == out + "/" + er.PNG_NAME
    for name in (er.PNG_NAME, er.HTML_NAME, er.JSON_NAME):
        assert tf.io.gfile.exists(f"{out}/{name}")
    with tf.io.gfile.GFile(f"{out}/{er.PNG_NAME}", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_gru_model_report(tmp_path):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from models.gru import build_gru_model  # pylint: disable=import-outside-toplevel

    tf.keras.utils.set_random_seed(0)
    model = build_gru_model("seed", 1 + len(VOCAB) + OOV, embedding_dim=4, units=3)
    score = er.gru_score_fn(model, VOCAB)
    scores = score(["awesome", "the"])
    padded = np.array([[VOCAB.index("awesome") + 1, 0, 0], [1, 0, 0]], dtype=np.int64)
    np.testing.assert_allclose(scores, model.predict(padded, verbose=0).reshape(-1), rtol=1e-5)
    report = er.report_for_gru_model(model, VOCAB, str(tmp_path), top_k=4)
    assert report["method"] == "model-scored" and len(report["most_negative"]) == 4
    assert all(report["probes"][w] is not None for w in er.DEFAULT_PROBES)
