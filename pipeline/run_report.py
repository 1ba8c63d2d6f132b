"""report.html: one self-contained page a person opens after a run to see what happened.

The run summary JSON is for programs and the console summary scrolls away; this page shows the
same facts (status, data, training curves, metrics against the baseline, the blessing decision,
what was pushed, the embedding picture, the components) in one file. It needs no network: the CSS
is in the page and the pictures are inlined as base64 ``data:`` URIs, so it opens the same on a
laptop, from a bucket download or as a CI artifact. Every key of the summary may be missing (a
failed run has only status/error/components/config/log); each section then says "not available".
"""
from __future__ import annotations

import base64
import io
import math
import os
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import jinja2

TEMPLATE_NAME = "run_report.html.j2"
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
METRIC_ORDER = ("accuracy", "auc", "precision", "recall")
SHOWN_WORDS = 12
# A difference smaller than this shows as "no change" (metrics are shown with 3 decimals).
_DIFF_TOLERANCE = 0.0005


def render_report(summary: Optional[Dict[str, Any]]) -> str:
    """The report page for a run summary (see pipeline/run_summary.py), as an HTML string."""
    return _environment().get_template(TEMPLATE_NAME).render(**_page(summary or {}))


def write_report(summary: Optional[Dict[str, Any]], path: str) -> str:
    """Writes the report page to ``path`` (local or a tf.io.gfile URL such as gs://) and returns ``path``."""
    page = render_report(summary)
    if "://" in path:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel  # only for object stores

        with tf.io.gfile.GFile(path, "w") as handle:
            handle.write(page)
        return path
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path


def _environment() -> jinja2.Environment:
    # ".j2" must be listed: select_autoescape() alone matches only names ending in .html/.htm/.xml.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                             autoescape=jinja2.select_autoescape(("html", "j2")),
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(metric=format_metric, signed=format_signed, thousands=format_count,
                       seconds=lambda value: f"{value:.1f}" if _is_number(value) else "\u2014",
                       duration=format_duration)
    return env


# ----------------------------------------------------------------------------- number formatting

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_metric(value: Any) -> str:
    """0.8812 -> '0.881'; missing -> an em dash; an integer count keeps its digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return format_count(value)
    return f"{value:.3f}" if _is_number(value) else "\u2014"


def format_signed(value: Any) -> str:
    return f"{value:+.3f}" if _is_number(value) else "\u2014"


def format_count(value: Any) -> str:
    return f"{int(value):,}" if _is_number(value) else "\u2014"


def format_duration(seconds: Any) -> str:
    """12.3 -> '12.3 s', 252 -> '4 min 12 s', 3780 -> '1 h 03 min'."""
    if not _is_number(seconds):
        return "\u2014"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _when(started_at: Any) -> Optional[str]:
    if not started_at:
        return None
    try:
        moment = datetime.fromisoformat(str(started_at).replace("Z", "+00:00"))
    except ValueError:
        return str(started_at)
    if moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.isoformat(sep=" ")


# ----------------------------------------------------------------------------- the page's data

def _page(summary: Dict[str, Any]) -> Dict[str, Any]:
    """Everything the template shows, already picked apart; None means "not available"."""
    config = summary.get("config") or {}
    status = summary.get("status") or "unknown"
    when = _when(summary.get("started_at"))
    return {
        "title": f"IMDB pipeline run: {status}" + (f", {when}" if when else ""),
        "status": status,
        "error": summary.get("error"),
        "model_family": summary.get("model_family") or config.get("model"),
        "seconds": summary.get("seconds"),
        "when": when,
        "log": summary.get("log"),
        "tensorboard_logdir": summary.get("tensorboard_logdir"),
        "data": summary.get("data") or None,
        "training": _training(summary.get("training")),
        "metrics": _metrics(summary.get("eval_metrics"), summary.get("baseline_metrics")),
        "blessing": _blessing(summary),
        "canary": summary.get("canary") if isinstance(summary.get("canary"), dict) else None,
        "push": ({key: summary.get(key) for key in ("pushed", "pushed_path", "pushed_version", "already_serving")}
                 if "pushed" in summary else None),
        "embedding": _embedding(summary.get("embedding_report")),
        "components": _components(summary.get("components")),
        "config": config,
    }


def _training(training: Any) -> Optional[Dict[str, Any]]:
    history = [row for row in (training or {}).get("history") or [] if isinstance(row, dict)]
    if not history:
        return None
    best_round = training.get("best_round")
    columns = [name for name in ("loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc")
               if any(_is_number(row.get(name)) for row in history)]
    return {"chart": _training_chart(history, best_round), "history": history, "columns": columns,
            "best_round": best_round}


def _training_chart(history: List[Dict[str, Any]], best_round: Any) -> Optional[str]:
    """Loss and accuracy per evaluation round, train and eval, as a PNG data: URI (None: nothing to draw)."""
    # A bare Figure on the Agg canvas: no display needed, pyplot's global state left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=import-outside-toplevel
    from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

    by_epoch = all(_is_number(row.get("epoch")) for row in history)
    xs = [row["epoch"] if by_epoch else row.get("round", i + 1) for i, row in enumerate(history)]
    panels = [(title, name) for title, name in (("loss", "loss"), ("accuracy", "accuracy"))
              if any(_is_number(row.get(key)) for row in history for key in (name, "val_" + name))]
    if not panels:
        return None
    best_x = next((x for x, row in zip(xs, history) if row.get("round") == best_round), None)
    fig = Figure(figsize=(5.0 * len(panels), 3.1), dpi=130)
    FigureCanvasAgg(fig)
    for number, (title, name) in enumerate(panels, start=1):
        axes = fig.add_subplot(1, len(panels), number)
        for key, label, colour, style in ((name, "train", "#1f6feb", "-"), ("val_" + name, "eval", "#e36209", "--")):
            points = [(x, row[key]) for x, row in zip(xs, history) if _is_number(row.get(key))]
            if points:
                axes.plot(*zip(*points), style, color=colour, marker="o", markersize=4, lw=1.8, label=label)
        if best_x is not None:
            axes.axvline(best_x, color="#2da44e", lw=1.2, ls=":", label=f"best (round {best_round})")
        axes.set_title(title, fontsize=11)
        axes.set_xlabel("epoch" if by_epoch else "evaluation round", fontsize=9)
        axes.tick_params(labelsize=8)
        axes.grid(color="#e5e5e5", lw=0.6)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        axes.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return _data_uri(buffer.getvalue(), "image/png")


def _metrics(candidate: Any, baseline: Any) -> Optional[Dict[str, Any]]:
    """Rows = overall then each length bucket; per metric the candidate, baseline and difference."""
    candidate = candidate or {}
    baseline = baseline or {}
    buckets = candidate.get("by_length_bucket") or {}
    if not candidate.get("overall") and not buckets:
        return None
    has_baseline = bool(baseline.get("overall") or baseline.get("by_length_bucket"))
    base_buckets = baseline.get("by_length_bucket") or {}
    slices = [("overall", candidate.get("overall") or {}, baseline.get("overall") or {})]
    slices += [(name, values or {}, base_buckets.get(name) or {}) for name, values in buckets.items()]
    present = {key for _, values, _ in slices for key, value in values.items() if _is_number(value)}
    names = [n for n in METRIC_ORDER if n in present]
    names += sorted(present - set(METRIC_ORDER) - {"example_count"})
    rows = []
    for name, values, base in slices:
        cells = []
        for metric in names:
            value, before = values.get(metric), base.get(metric)
            diff = value - before if _is_number(value) and _is_number(before) else None
            trend = "" if diff is None or abs(diff) < _DIFF_TOLERANCE else ("up" if diff > 0 else "down")
            cells.append({"value": value, "baseline": before, "diff": diff, "trend": trend})
        rows.append({"slice": name, "examples": values.get("example_count"), "cells": cells})
    return {"names": names, "rows": rows, "has_baseline": has_baseline}


def _blessing(summary: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    rules = [rule for rule in summary.get("blessing_rules") or [] if isinstance(rule, dict)]
    if "blessed" not in summary and not rules:
        return None
    rules = [dict(rule, outcome=_outcome(rule)) for rule in rules]
    return {"blessed": summary.get("blessed"), "rules": rules,
            "reasons": [] if rules else list(summary.get("blessing_reasons") or [])}


def _outcome(rule: Dict[str, Any]) -> str:
    if rule.get("gated") is False:
        return "not gated"
    return "pass" if rule.get("passed") else "fail"


def _embedding(report: Any) -> Optional[Dict[str, Any]]:
    if not report:
        return None
    picture, picture_error = None, None
    if report.get("png"):
        try:
            picture = _data_uri(_read_bytes(report["png"]), "image/png")
        except Exception as err:  # pylint: disable=broad-except  # a missing picture must not lose the report
            picture_error = f"{type(err).__name__}: {err}"
    return {"picture": picture, "picture_error": picture_error, "png": report.get("png"),
            "html": report.get("html"), "method": report.get("method"), "description": report.get("description"),
            "heldout_correlation": report.get("heldout_correlation"),
            "most_positive": _word_scores(report.get("most_positive"))[:SHOWN_WORDS],
            "most_negative": _word_scores(report.get("most_negative"))[:SHOWN_WORDS]}


def _read_bytes(path: str) -> bytes:
    """Through tf.io.gfile because the picture may sit in an object store (gs://...)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  # heavy; only when there is a picture

    with tf.io.gfile.GFile(path, "rb") as handle:
        return handle.read()


def _word_scores(items: Any) -> List[Dict[str, Any]]:
    """[[word, position], ...], [{"word", "position"|"score"}, ...] or [word, ...] -> [{"word", "score"}]."""
    rows = []
    for item in items or []:
        if isinstance(item, dict):
            rows.append({"word": item.get("word"), "score": item.get("position", item.get("score"))})
        elif isinstance(item, (list, tuple)) and item:
            rows.append({"word": item[0], "score": item[1] if len(item) > 1 else None})
        else:
            rows.append({"word": item, "score": None})
    return rows


def _components(components: Any) -> Optional[Dict[str, Any]]:
    if not components:
        return None
    rows = []
    for node, info in components.items():
        info = info if isinstance(info, dict) else {}
        rows.append({"node": node, "seconds": info.get("seconds"), "cached": info.get("cached"),
                     "execution_id": info.get("execution_id")})
    total = sum(row["seconds"] for row in rows if _is_number(row.get("seconds")))
    return {"rows": rows, "total_seconds": total, "cached": sum(1 for row in rows if row.get("cached"))}


def _data_uri(content: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"
