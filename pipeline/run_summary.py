"""What happened in a pipeline run, read back from ML Metadata: the `run_summary.json` contents.

The local runner records which execution each component produced (or reused from the cache);
this module follows those executions' output events to the evaluation, blessing and push
artifacts and turns them into plain numbers and sentences.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.blessing_gate import evaluation_metrics
from components.imdb_reader import duplicates_in_words

SUMMARY_FILE = "run_summary.json"


def output_artifacts(store: metadata_store.MetadataStore, execution_id: int) -> Dict[str, List[Any]]:
    """{output key: [mlmd Artifact]} of one execution (works for cached executions too)."""
    events = [e for e in store.get_events_by_execution_ids([execution_id])
              if e.type == metadata_store_pb2.Event.OUTPUT]
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    outputs: Dict[str, List[Any]] = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else "?"
        outputs.setdefault(key, []).append(by_id[event.artifact_id])
    return outputs


def _custom(artifact, name: str, default=None):
    if name not in artifact.custom_properties:
        return default
    value = artifact.custom_properties[name]
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else default


def _read_json(uri: str) -> Optional[Dict[str, Any]]:
    from tensorflow.io import gfile  # pylint: disable=import-outside-toplevel

    if not gfile.exists(uri):
        return None
    with gfile.GFile(uri) as handle:
        return json.load(handle)


def data_summary(ingestion: Dict[str, Any]) -> Dict[str, Any]:
    """The `data` part of the summary, from ExampleGen's `ingestion_report.json`."""
    data = {k: ingestion.get(k) for k in ("examples_per_split", "seen", "rejected", "rejected_by_reason", "notes")}
    duplicates = ingestion.get("duplicates_dropped") or {}
    conflicts = ingestion.get("label_conflicts") or {}
    data["duplicates_dropped"] = duplicates.get("count", 0)
    data["duplicates_by_kind"] = duplicates.get("by_kind") or {}
    # Every copy of a text filed under both labels is dropped (none trained with either label).
    data["label_conflicts"] = conflicts.get("count", 0)
    data["label_conflict_texts"] = conflicts.get("texts", 0)
    data["label_conflict_examples"] = list(conflicts.get("examples") or [])[:5]
    data["ignored"] = (ingestion.get("ignored") or {}).get("count", 0)
    return data


def build_summary(store: metadata_store.MetadataStore, executions: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """`executions`: {node id: {'execution_id', 'cached', 'seconds'}} as the runner recorded them."""
    summary: Dict[str, Any] = {"components": executions}
    example_gen = executions.get("ImdbExampleGen", {})
    if example_gen.get("execution_id"):
        report = output_artifacts(store, example_gen["execution_id"]).get("ingestion_report")
        ingestion = _read_json(report[0].uri + "/ingestion_report.json") if report else None
        if ingestion:
            summary["data"] = data_summary(ingestion)
    trainer = executions.get("Trainer", {})
    if trainer.get("execution_id"):
        model_run = output_artifacts(store, trainer["execution_id"]).get("model_run")
        if model_run:
            summary["tensorboard_logdir"] = model_run[0].uri
            report = _read_json(f"{model_run[0].uri}/embedding_report/embedding_report.json")
            if report:
                summary["embedding_report"] = {k: v for k, v in report.items() if k not in ("words", "direction")}
            history = _read_json(f"{model_run[0].uri}/training_history.json")
            if history:
                summary["training"] = history
    evaluator = executions.get("Evaluator", {})
    if evaluator.get("execution_id"):
        evaluation = output_artifacts(store, evaluator["execution_id"])["evaluation"][0].uri
        summary["eval_metrics"], summary["baseline_metrics"] = evaluation_metrics(evaluation)
    gate = executions.get("BlessingGate", {})
    if gate.get("execution_id"):
        blessing = output_artifacts(store, gate["execution_id"])["blessing"][0]
        summary["blessed"] = bool(_custom(blessing, "blessed", 0))
        summary["blessing_rules"] = _read_json(f"{blessing.uri}/blessing_rules.json") or []
        summary["blessing_reasons"] = [rule["sentence"] for rule in summary["blessing_rules"] if not rule["passed"]]
    canary = executions.get("ServingCanary", {})
    if canary.get("execution_id"):
        report = _read_json(f"{output_artifacts(store, canary['execution_id'])['blessing'][0].uri}/canary_report.json")
        if report:
            summary["canary"] = {key: report.get(key) for key in ("passed", "skipped", "verdict", "total_seconds",
                                                                  "warmup_requests")}
            if not report.get("passed") and not report.get("skipped"):
                summary.setdefault("blessing_reasons", []).append(report.get("verdict"))
    pusher = executions.get("Pusher", {})
    if pusher.get("execution_id"):
        pushed = output_artifacts(store, pusher["execution_id"])["pushed_model"][0]
        summary["pushed"] = bool(_custom(pushed, "pushed", 0))
        summary["pushed_path"] = _custom(pushed, "pushed_destination") if summary["pushed"] else None
        summary["pushed_version"] = _custom(pushed, "pushed_version") if summary["pushed"] else None
        summary["already_serving"] = bool(_custom(pushed, "already_serving", 0))
    return summary


def format_summary(summary: Dict[str, Any]) -> str:
    """The human-readable version printed at the end of a run."""
    lines = ["", "Run summary"]
    if "data" in summary:
        data = summary["data"]
        kinds = duplicates_in_words(data.get("duplicates_by_kind") or {})
        lines.append(f"  data: {', '.join(f'{k} {v}' for k, v in data['examples_per_split'].items())}; "
                     f"rejected {data['rejected']}" + (f" {data['rejected_by_reason']}" if data["rejected"] else "")
                     + f"; duplicates dropped {data.get('duplicates_dropped', 0)}" + (f" ({kinds})" if kinds else "")
                     + f"; conflicting labels dropped {data.get('label_conflicts', 0)}; other files ignored "
                       f"{data.get('ignored', 0)}")
        if data.get("label_conflicts"):
            texts = data.get("label_conflict_texts") or 0
            lines.append(f"  note: {data['label_conflicts']} reviews dropped because their text is filed under both "
                         f"labels ({texts} text{'' if texts == 1 else 's'}), none trained with either label; e.g. "
                         + ", ".join(data.get("label_conflict_examples") or []))
        lines.extend(f"  note: {note}" for note in data.get("notes") or [])
    metrics = summary.get("eval_metrics", {})
    if metrics.get("overall"):
        shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics["overall"].items())
        lines.append(f"  eval: {shown}")
        for bucket, values in metrics.get("by_length_bucket", {}).items():
            lines.append(f"    {bucket:>8} words: accuracy {values.get('accuracy', float('nan')):.4f} "
                         f"(n={values.get('example_count', '?')})")
    if "blessed" in summary:
        lines.append(f"  blessed: {'yes' if summary['blessed'] else 'NO'}")
        lines.extend(f"    {'ok  ' if rule['passed'] else 'FAIL'} {rule['sentence']}"
                     for rule in summary.get("blessing_rules", []))
        lines.extend(f"    FAIL {reason}" for reason in summary.get("blessing_reasons", [])
                     if reason not in {rule["sentence"] for rule in summary.get("blessing_rules", [])})
    if summary.get("canary") and not summary["canary"].get("skipped"):
        canary = summary["canary"]
        warmed = f", after {canary['warmup_requests']} warmup requests" if canary.get("warmup_requests") else ""
        lines.append(f"  serving canaries: {'passed' if canary['passed'] else 'FAILED'} in a fresh process "
                     f"({canary.get('total_seconds') or 0:.1f}s{warmed})"
                     f"{'' if canary['passed'] else ': ' + canary['verdict']}")
    if "pushed" in summary:
        if summary["pushed"] and summary.get("already_serving"):
            lines.append(f"  pushed: already serving this model at {summary['pushed_path']}")
        elif summary["pushed"]:
            lines.append(f"  pushed: {summary['pushed_path']}")
        else:
            lines.append("  pushed: nothing (the model was not blessed)")
    if summary.get("embedding_report"):
        from models.embedding_report import format_report  # pylint: disable=import-outside-toplevel

        lines.append("  learned embedding (see the PNG/HTML report):")
        lines.extend("    " + line for line in format_report(summary["embedding_report"]).splitlines())
    if summary.get("tensorboard_logdir"):
        lines.append(f"  TensorBoard: tensorboard --logdir {summary['tensorboard_logdir']}")
    cached = [node for node, info in summary.get("components", {}).items() if info.get("cached")]
    if cached:
        lines.append(f"  from cache: {', '.join(cached)}")
    if summary.get("summary_path"):
        lines.append(f"  written to {summary['summary_path']}")
    return "\n".join(lines)


def write_summary(summary: Dict[str, Any], path: str) -> None:
    """Written beside and renamed into place: a killed run never leaves half a file."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True, default=str)
    os.replace(partial, path)


def read_summary(path: str) -> Optional[Dict[str, Any]]:
    """The summary at `path`, or None when there is none (or only an unreadable one)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return None
