"""What happened in a pipeline run, read back from ML Metadata: the `run_summary.json` contents.

The local runner records which execution each component produced (or reused from the cache);
this module follows those executions' output events to the evaluation, blessing and push
artifacts and turns them into plain numbers and sentences.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

SUMMARY_FILE = "run_summary.json"
_METRIC_NAMES = {"example_count": "example_count", "binary_accuracy": "accuracy", "auc": "auc",
                 "precision": "precision", "recall": "recall"}


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


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def evaluation_metrics(evaluation_uri: str) -> Dict[str, Any]:
    """{'overall': {...}, 'by_length_bucket': {bucket: {...}}} from a TFMA evaluation folder."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    result = tfma.load_eval_result(evaluation_uri)
    overall: Dict[str, Any] = {}
    by_bucket: Dict[str, Dict[str, Any]] = {}
    for slice_key, metrics in result.slicing_metrics:
        flat = {}
        for output in metrics.values():
            for sub in output.values():
                for name, value in sub.items():
                    if name in _METRIC_NAMES and isinstance(value, dict) and "doubleValue" in value:
                        flat[_METRIC_NAMES[name]] = _clean(value["doubleValue"])
        if "example_count" in flat:
            flat["example_count"] = int(flat["example_count"])
        if not slice_key:
            overall = flat
        else:
            by_bucket[str(dict(slice_key).get("length_bucket", slice_key))] = flat
    return {"overall": overall, "by_length_bucket": dict(sorted(by_bucket.items()))}


def blessing_reasons(evaluation_uri: str) -> List[str]:
    """Why the model was not blessed, one sentence per failed threshold (empty when blessed)."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    try:
        validation = tfma.load_validation_result(evaluation_uri)
    except Exception:  # pylint: disable=broad-except  # no validation file: nothing to explain
        return []
    reasons = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            name = failure.metric_key.name
            comparison = "change vs the last blessed model" if failure.metric_key.is_diff else "value"
            reasons.append(f"{name} {comparison} {failure.metric_value.double_value.value:.4f} "
                           f"fails the threshold ({failure.message or str(failure.metric_threshold).strip()})"
                           .replace("\n", " "))
    if not reasons and not validation.validation_ok:
        reasons.append("TFMA validation failed: " + str(validation.missing_thresholds or validation).replace("\n", " ")[:300])
    return reasons


def build_summary(store: metadata_store.MetadataStore, executions: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """`executions`: {node id: {'execution_id', 'cached', 'seconds'}} as the runner recorded them."""
    summary: Dict[str, Any] = {"components": executions}
    example_gen = executions.get("ImdbExampleGen", {})
    if example_gen.get("execution_id"):
        report = output_artifacts(store, example_gen["execution_id"]).get("ingestion_report")
        if report:
            with open(report[0].uri + "/ingestion_report.json", encoding="utf-8") as handle:
                ingestion = json.load(handle)
            summary["data"] = {k: ingestion[k] for k in ("examples_per_split", "rejected", "rejected_by_reason")}
    trainer = executions.get("Trainer", {})
    if trainer.get("execution_id"):
        model_run = output_artifacts(store, trainer["execution_id"]).get("model_run")
        report_path = f"{model_run[0].uri}/embedding_report/embedding_report.json" if model_run else None
        if report_path and os.path.exists(report_path):
            with open(report_path, encoding="utf-8") as handle:
                report = json.load(handle)
            summary["embedding_report"] = {k: v for k, v in report.items() if k not in ("words", "direction")}
        if model_run:
            summary["tensorboard_logdir"] = model_run[0].uri
    evaluator = executions.get("Evaluator", {})
    if evaluator.get("execution_id"):
        outputs = output_artifacts(store, evaluator["execution_id"])
        evaluation = outputs["evaluation"][0].uri
        summary["eval_metrics"] = evaluation_metrics(evaluation)
        blessed = bool(_custom(outputs["blessing"][0], "blessed", 0))
        summary["blessed"] = blessed
        summary["blessing_reasons"] = [] if blessed else blessing_reasons(evaluation)
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
        lines.append(f"  data: {', '.join(f'{k} {v}' for k, v in data['examples_per_split'].items())}; "
                     f"rejected {data['rejected']}" + (f" {data['rejected_by_reason']}" if data["rejected"] else ""))
    metrics = summary.get("eval_metrics", {})
    if metrics.get("overall"):
        shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics["overall"].items())
        lines.append(f"  eval: {shown}")
        for bucket, values in metrics.get("by_length_bucket", {}).items():
            lines.append(f"    {bucket:>8} words: accuracy {values.get('accuracy', float('nan')):.4f} "
                         f"(n={values.get('example_count', '?')})")
    if "blessed" in summary:
        if summary["blessed"]:
            lines.append("  blessed: yes (meets the accuracy bound and is no worse than the last blessed model)")
        else:
            lines.append("  blessed: NO - " + ("; ".join(summary["blessing_reasons"]) or "see the Evaluator output"))
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
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True, default=str)


def read_summary(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
