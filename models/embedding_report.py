"""Where words sit along a learned negative -> positive direction of the masked GRU's embedding.

The seed book's insight, made checkable: after training, "awesome"/"amazing" end up far from
"awful"/"terrible" along one direction of the embedding space, while "good" sits much less
positive than one would guess (the model sees it in "not good" nearly as often as in praise).

How the direction is defined (``method`` in the report says which one was used):

* ``model-scored`` (when ``score_fn`` is given; the preferred way). ``score_fn`` maps words to the
  trained model's probability of "positive" for a one-word review. The ``max_words`` most frequent
  vocabulary words (tf.Transform sorts its vocabulary by frequency) are scored; the direction is
  the centroid (in embedding space) of the ``n_anchors`` highest-scoring words minus the centroid
  of the ``n_anchors`` lowest-scoring ones, normalised to length 1. ``n_anchors`` is 100, capped at
  a quarter of the scored words for small vocabularies.
  Caveats, stated rather than hidden: the direction comes from the model's own outputs, so it
  shows what the model learned, not an independent ground truth; the anchor words lie near the
  ends largely by construction. The report therefore also gives the correlation between position
  and score over the *non-anchor* words (``heldout_correlation``): high means sentiment really is
  close to one linear direction of the embedding, low means the GRU reads it in a non-linear way.
* ``seed-based`` (no ``score_fn``): the direction from the centroid of a fixed negative seed list
  (worst, awful, waste, boring, terrible, poor) to that of a positive one (great, excellent,
  wonderful, best, perfect, loved), using the seeds present in the vocabulary. It depends on six
  hand-picked words a side and makes the seed words look well separated by construction.

A word's position is the projection of its embedding row, minus the mean row of the ``max_words``
frequent words, onto the unit direction: 0 is the typical frequent word, positive is the positive
side, and the unit is the embedding's own (distances along the direction, not probabilities). The
most positive/negative lists and the percentile ranks are taken among those frequent words, since
rare words' rows have had few updates and mostly hold noise. A probe's percentile is the share
(0-100) of frequent words lying below it, ties counted half.

Row layout of ``embedding_matrix`` (the GRU's ids): row 0 = padding, row i+1 = ``vocabulary[i]``,
rows V+1.. = OOV buckets (ignored here).

Outputs in ``out_dir``: ``embedding_report.png`` (chart), ``embedding_report.html`` (self-contained,
PNG embedded as base64) and ``embedding_report.json`` (the numbers, every frequent word included).
``out_dir`` is a local path or any ``tf.io.gfile`` URI (``gs://...``, ``s3://...``): every file is written
through ``tf.io.gfile`` (the chart is rendered into memory first), so local folders and object stores behave alike.
"""
from __future__ import annotations

import base64
import io
import json
import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

PNG_NAME = "embedding_report.png"
HTML_NAME = "embedding_report.html"
JSON_NAME = "embedding_report.json"
HTML_TEMPLATE = "embedding_report.html.j2"  # in models/templates/
DEFAULT_PROBES = ("awesome", "amazing", "good", "bad", "awful", "terrible", "not")
POSITIVE_SEEDS = ("great", "excellent", "wonderful", "best", "perfect", "loved")
NEGATIVE_SEEDS = ("worst", "awful", "waste", "boring", "terrible", "poor")
MAX_WORDS = 5000
N_ANCHORS = 100
_SCORE_BATCH = 1024

_POS_COLOUR = "#2a9d8f"
_NEG_COLOUR = "#e76f51"
_PROBE_COLOUR = "#264653"


def _percentile(value: float, sorted_positions: np.ndarray) -> float:
    below = np.searchsorted(sorted_positions, value, side="left")
    at_or_below = np.searchsorted(sorted_positions, value, side="right")
    return float(100.0 * (below + 0.5 * (at_or_below - below)) / len(sorted_positions))


def _score(score_fn: Callable[[List[str]], np.ndarray], words: List[str]) -> np.ndarray:
    parts = []
    for start in range(0, len(words), _SCORE_BATCH):
        batch = words[start:start + _SCORE_BATCH]
        scores = np.asarray(score_fn(batch), dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(batch):
            raise ValueError(f"score_fn returned {scores.shape[0]} scores for {len(batch)} words")
        parts.append(scores)
    scores = np.concatenate(parts) if parts else np.zeros(0)
    if not np.all(np.isfinite(scores)):
        raise ValueError("score_fn returned NaN or infinite scores")
    return scores


def _direction(candidates: List[str], vectors: np.ndarray, index: Dict[str, int], word_rows: np.ndarray,
               score_fn, n_anchors: int) -> tuple:
    """(unit direction, info dict, scores of the candidates or None)."""
    if score_fn is not None:
        if len(candidates) < 4:
            raise ValueError(f"need at least 4 vocabulary words to pick anchor words, got {len(candidates)}")
        scores = _score(score_fn, candidates)
        k = max(1, min(n_anchors, len(candidates) // 4))
        order = np.argsort(scores, kind="stable")
        neg, pos = order[:k], order[-k:][::-1]
        direction = vectors[pos].mean(axis=0) - vectors[neg].mean(axis=0)
        info = {
            "method": "model-scored",
            "description": (f"centroid of the {k} highest-scoring minus the {k} lowest-scoring of the "
                            f"{len(candidates)} most frequent words, scored by the model as one-word reviews"),
            "positive_anchors": [candidates[i] for i in pos],
            "negative_anchors": [candidates[i] for i in neg],
            "_anchor_ids": np.concatenate([pos, neg]),
        }
        return direction, info, scores
    pos_words = [w for w in POSITIVE_SEEDS if w in index]
    neg_words = [w for w in NEGATIVE_SEEDS if w in index]
    if not pos_words or not neg_words:
        raise ValueError("no score_fn and the vocabulary lacks the positive or the negative seed words "
                         f"({', '.join(POSITIVE_SEEDS)} / {', '.join(NEGATIVE_SEEDS)})")
    direction = (word_rows[[index[w] for w in pos_words]].mean(axis=0)
                 - word_rows[[index[w] for w in neg_words]].mean(axis=0))
    info = {
        "method": "seed-based",
        "description": (f"centroid of the positive seed words ({', '.join(pos_words)}) minus that of the "
                        f"negative ones ({', '.join(neg_words)}); hand-picked seeds, not model scores"),
        "positive_anchors": pos_words,
        "negative_anchors": neg_words,
    }
    return direction, info, None


def write_report(embedding_matrix: np.ndarray, vocabulary: Sequence[str], out_dir: str,
                 probes: Sequence[str] = DEFAULT_PROBES, top_k: int = 20,
                 score_fn: Optional[Callable[[List[str]], np.ndarray]] = None, *,
                 max_words: int = MAX_WORDS, n_anchors: int = N_ANCHORS) -> dict:
    """Writes the PNG/HTML/JSON report (see the module docstring for the method) and returns

    ``{"method", "description", "n_words", "most_positive": [[word, position], ...] (most positive
    first), "most_negative": [...] (most negative first), "probes": {word: {"position",
    "percentile", "frequency_rank", "score"} or None when not in the vocabulary},
    "heldout_correlation", "png", "html", "json"}``. Raises ValueError for a matrix that does not
    fit the vocabulary, or when no direction can be defined.
    """
    vocabulary = list(vocabulary)
    matrix = np.asarray(embedding_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 1 or matrix.shape[0] < 1 + len(vocabulary):
        raise ValueError(f"embedding matrix of shape {matrix.shape} cannot hold padding + "
                         f"{len(vocabulary)} vocabulary rows")
    if not vocabulary:
        raise ValueError("empty vocabulary")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    word_rows = matrix[1:1 + len(vocabulary)]
    index: Dict[str, int] = {}
    for i, word in enumerate(vocabulary):
        index.setdefault(word, i)
    n = min(max_words, len(vocabulary))
    candidates, vectors = vocabulary[:n], word_rows[:n]

    direction, info, scores = _direction(candidates, vectors, index, word_rows, score_fn, n_anchors)
    norm = float(np.linalg.norm(direction))
    if not norm > 1e-12:
        raise ValueError("the positive and negative centroids coincide; the embedding shows no direction")
    unit = direction / norm
    centre = vectors.mean(axis=0)
    positions = (vectors - centre) @ unit
    sorted_positions = np.sort(positions)
    order = np.argsort(-positions, kind="stable")
    k = min(top_k, n)
    most_positive = [[candidates[i], float(positions[i])] for i in order[:k]]
    most_negative = [[candidates[i], float(positions[i])] for i in order[::-1][:k]]

    heldout = None
    if scores is not None:
        keep = np.ones(n, dtype=bool)
        keep[info.pop("_anchor_ids")] = False
        if keep.sum() >= 3 and np.std(scores[keep]) > 0 and np.std(positions[keep]) > 0:
            heldout = float(np.corrcoef(positions[keep], scores[keep])[0, 1])

    probe_info: Dict[str, Optional[dict]] = {}
    probe_words = list(dict.fromkeys(probes))
    extra_scores = {}
    if score_fn is not None:
        outside = [w for w in probe_words if w in index and index[w] >= n]
        if outside:
            extra_scores = dict(zip(outside, _score(score_fn, outside)))
    for word in probe_words:
        if word not in index:
            probe_info[word] = None
            continue
        i = index[word]
        position = float((word_rows[i] - centre) @ unit)
        score = None
        if scores is not None:
            score = float(scores[i]) if i < n else float(extra_scores[word])
        probe_info[word] = {"position": position, "percentile": _percentile(position, sorted_positions),
                            "frequency_rank": i + 1, "score": score}

    report = {
        "method": info["method"],
        "description": info["description"],
        "positive_anchors": info["positive_anchors"],
        "negative_anchors": info["negative_anchors"],
        "n_words": n,
        "vocabulary_size": len(vocabulary),
        "embedding_dim": int(matrix.shape[1]),
        "most_positive": most_positive,
        "most_negative": most_negative,
        "probes": probe_info,
        "heldout_correlation": heldout,
        "png": os.path.join(out_dir, PNG_NAME),
        "html": os.path.join(out_dir, HTML_NAME),
        "json": os.path.join(out_dir, JSON_NAME),
    }
    words_table = [[candidates[i], round(float(positions[i]), 6)]
                   + ([round(float(scores[i]), 6)] if scores is not None else []) for i in range(n)]
    saved = {**report, "direction": [float(x) for x in unit],
             "words_columns": ["word", "position"] + (["score"] if scores is not None else []),
             "words": words_table}
    _write_files(report, saved, sorted_positions, out_dir)
    return report


def _write_files(report: dict, saved: dict, sorted_positions: np.ndarray, folder: str) -> None:
    """The three files, through tf.io.gfile: `folder` may be local, gs://, s3://, ..."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  (format_report's readers need no TF)

    tf.io.gfile.makedirs(folder)
    png = _plot(report, sorted_positions)
    with tf.io.gfile.GFile(os.path.join(folder, PNG_NAME), "wb") as handle:
        handle.write(png)
    with tf.io.gfile.GFile(os.path.join(folder, HTML_NAME), "w") as handle:
        handle.write(_html(report, base64.b64encode(png).decode("ascii")))
    with tf.io.gfile.GFile(os.path.join(folder, JSON_NAME), "w") as handle:
        handle.write(json.dumps(saved, indent=1))


def _plot(report: dict, sorted_positions: np.ndarray) -> bytes:
    """The chart as PNG bytes."""
    # A bare Figure renders with the Agg canvas and leaves pyplot's global state and backend alone.
    from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

    probes = {w: v for w, v in report["probes"].items() if v is not None}
    ends = {w for w, _ in report["most_positive"]} | {w for w, _ in report["most_negative"]}
    # Rows from the bottom: the negative end, probes in between, the positive end (most positive on top).
    negative = sorted(report["most_negative"], key=lambda item: item[1])
    positive = sorted(report["most_positive"], key=lambda item: item[1])
    middle = sorted(([w, v["position"]] for w, v in probes.items() if w not in ends), key=lambda item: item[1])
    negative_words = {w for w, _ in negative}
    positive = [item for item in positive if item[0] not in negative_words]  # tiny vocabularies overlap
    blocks = [b for b in (negative, middle, positive) if b]
    labels: List[str] = []
    values: List[float] = []
    ys: List[float] = []
    separators: List[float] = []
    y = 0.0
    for number, block in enumerate(blocks):
        if number:
            separators.append(y)
            y += 1.0
        for word, value in block:
            labels.append(word)
            values.append(value)
            ys.append(y)
            y += 1.0
    height = 2.6 + 0.24 * max(y, 8)
    fig = Figure(figsize=(9.5, height), dpi=110)
    grid = fig.add_gridspec(2, 1, height_ratios=[2.0, 0.24 * max(y, 8)], hspace=0.05)
    hist_ax = fig.add_subplot(grid[0])
    bar_ax = fig.add_subplot(grid[1], sharex=hist_ax)

    # Top: where all frequent words lie, with the probes marked.
    hist_ax.hist(sorted_positions, bins=min(60, max(10, len(sorted_positions) // 20)), color="#c9c9c9")
    hist_ax.set_yticks([])
    hist_ax.set_ylabel(f"{report['n_words']:,}\nwords", rotation=0, ha="right", va="center", fontsize=9)
    top = hist_ax.get_ylim()[1]
    hist_ax.set_ylim(0, top * 1.9)
    for level, (word, value) in enumerate(sorted(probes.items(), key=lambda item: item[1]["position"])):
        x = value["position"]
        colour = _POS_COLOUR if x >= 0 else _NEG_COLOUR
        hist_ax.axvline(x, color=colour, lw=1.4)
        hist_ax.text(x, top * (1.08 + 0.25 * (level % 3)), f"{word} p{value['percentile']:.0f}", ha="center",
                     va="bottom", fontsize=8.5, fontweight="bold", color=_PROBE_COLOUR,
                     bbox={"boxstyle": "round,pad=0.15", "fc": "#fff3b0", "ec": "none", "alpha": 0.9})
    hist_ax.tick_params(labelbottom=False)
    for side in ("top", "right", "left"):
        hist_ax.spines[side].set_visible(False)
    hist_ax.set_title("Learned sentiment direction of the GRU embedding\n"
                      f"({report['method']}: {_short_method(report)})", fontsize=11)

    # Bottom: the two ends of the direction, probes highlighted.
    colours = [_POS_COLOUR if v >= 0 else _NEG_COLOUR for v in values]
    bars = bar_ax.barh(ys, values, color=colours, height=0.75)
    for bar, word in zip(bars, labels):
        if word in probes:
            bar.set_edgecolor(_PROBE_COLOUR)
            bar.set_linewidth(1.8)
    bar_ax.set_yticks(ys)
    bar_ax.set_yticklabels(labels, fontsize=9)
    for tick, word in zip(bar_ax.get_yticklabels(), labels):
        if word in probes:
            tick.set_fontweight("bold")
            tick.set_bbox({"boxstyle": "round,pad=0.15", "fc": "#fff3b0", "ec": "none"})
    for sep in separators:
        bar_ax.axhline(sep, color="#999999", lw=0.6, ls=":")
    if middle:
        first = ys[len(negative)]
        bar_ax.text(1.0, first + (len(middle) - 1) / 2, "probes between\nthe two ends", transform=bar_ax.get_yaxis_transform(),
                    ha="right", va="center", fontsize=8, style="italic", color="#777777")
    bar_ax.axvline(0, color="#555555", lw=0.8)
    bar_ax.set_ylim(-0.8, y - 0.2)
    bar_ax.set_xlabel("position along the negative \u2192 positive direction "
                      "(projection, 0 = mean of the frequent words)", fontsize=9)
    bar_ax.grid(axis="x", color="#e5e5e5", lw=0.6)
    bar_ax.set_axisbelow(True)
    for side in ("top", "right"):
        bar_ax.spines[side].set_visible(False)
    note = f"top {len(report['most_positive'])} and bottom {len(report['most_negative'])} of the " \
           f"{report['n_words']:,} most frequent words; highlighted: probe words; pN = percentile rank among them"
    fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=8, color="#555555")
    fig.subplots_adjust(left=0.17, right=0.97, top=1 - 0.8 / height, bottom=0.75 / height)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _short_method(report: dict) -> str:
    if report["method"] == "model-scored":
        return f"{len(report['positive_anchors'])} top- vs bottom-scored words"
    return "seed words " + ", ".join(report["positive_anchors"][:3]) + " vs " + ", ".join(report["negative_anchors"][:3])


def _html(report: dict, png_b64: str) -> str:
    """The self-contained HTML page, from templates/embedding_report.html.j2 (autoescaped)."""
    import jinja2  # pylint: disable=import-outside-toplevel

    env = jinja2.Environment(loader=jinja2.PackageLoader("models", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template(HTML_TEMPLATE).render(report=report, png_b64=png_b64)


def format_report(report: dict) -> str:
    """A few lines for the run summary."""
    shown = 8
    lines = [f"  embedding direction ({report['method']}, {report['n_words']:,} frequent words): {report['html']}",
             "    most positive: " + ", ".join(w for w, _ in report["most_positive"][:shown]),
             "    most negative: " + ", ".join(w for w, _ in report["most_negative"][:shown])]
    present = [(w, v) for w, v in report["probes"].items() if v is not None]
    missing = [w for w, v in report["probes"].items() if v is None]
    if present:
        lines.append("    probes (percentile, 100 = most positive): "
                     + ", ".join(f"{w} {v['percentile']:.0f}" for w, v in present))
    if missing:
        lines.append("    not in the vocabulary: " + ", ".join(missing))
    if report.get("heldout_correlation") is not None:
        lines.append(f"    position vs model score, non-anchor words: r = {report['heldout_correlation']:.2f}")
    return "\n".join(lines)


def gru_score_fn(model, vocabulary: Sequence[str], batch_size: int = 512) -> Callable[[List[str]], np.ndarray]:
    """score_fn for a trained masked GRU: each word as a one-token review (id = vocabulary index + 1).

    Padding is masked, so a one-token input scores exactly like the word followed by padding.
    """
    ids = {}
    for i, word in enumerate(vocabulary):
        ids.setdefault(word, i + 1)

    def score(words: List[str]) -> np.ndarray:
        tokens = np.array([[ids[w]] for w in words], dtype=np.int64).reshape(-1, 1)
        return np.asarray(model.predict(tokens, batch_size=batch_size, verbose=0), dtype=np.float64).reshape(-1)

    return score


def report_for_gru_model(model, vocabulary: Sequence[str], out_dir: str, **kwargs) -> dict:
    """write_report for a trained ``models.gru`` model: its ``embedding`` layer, scored by itself."""
    matrix = model.get_layer("embedding").get_weights()[0]
    return write_report(matrix, vocabulary, out_dir, score_fn=gru_score_fn(model, vocabulary), **kwargs)
