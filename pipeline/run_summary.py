"""What happened in a pipeline run, read back from ML Metadata: the `run_summary.json` contents.

The local runner records which execution each component produced (or reused from the cache);
this module follows those executions' output events to the evaluation, blessing and push
artifacts and turns them into plain numbers and sentences.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional, Tuple

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

SUMMARY_FILE = "run_summary.json"
BASELINE_MODEL = "baseline"     # TFMA's name for the Evaluator's baseline model
_ACCURACY_METRIC = "binary_accuracy"  # the thresholded metric (pipeline.eval_config)
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


def evaluation_metrics(evaluation_uri: str, model_name: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """{'overall': {...}, 'by_length_bucket': {bucket: {...}}} of one model of a TFMA evaluation
    (the candidate when None), or None when the evaluation has no such model."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel  (TF: seconds)

    try:
        result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
    except IndexError:  # TFMA's way of saying "no metrics for that model name"
        return None
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
    if not overall and not by_bucket:
        return None
    return {"overall": overall, "by_length_bucket": dict(sorted(by_bucket.items()))}


def _failed_rules(evaluation_uri: str) -> Tuple[Dict[Tuple[str, bool], float], List[str]]:
    """TFMA's verdict: {(slice, is_diff): value} of failed accuracy thresholds, and sentences for
    any failure that is not one of those rules (so nothing TFMA said is ever dropped)."""
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

    try:
        validation = tfma.load_validation_result(evaluation_uri)
    except Exception:  # pylint: disable=broad-except  # no validation file: nothing failed
        return {}, []
    failed, other = {}, []
    for per_slice in validation.metric_validations_per_slice:
        keys = per_slice.slice_key.single_slice_keys
        slice_name = keys[0].bytes_value.decode() if keys else ""
        for failure in per_slice.failures:
            if failure.metric_key.name == _ACCURACY_METRIC:
                failed[(slice_name, failure.metric_key.is_diff)] = failure.metric_value.double_value.value
            else:
                other.append(f"TFMA: {failure.metric_key.name} on slice {slice_name or 'overall'} failed "
                             f"({failure.message or 'threshold not met'})")
    if not validation.validation_ok and not failed and not other:
        other.append("TFMA: validation failed: " + str(validation.missing_thresholds or validation).replace("\n", " ")[:300])
    return failed, other


def blessing_rules(evaluation_uri: str, candidate: Dict[str, Any], baseline: Optional[Dict[str, Any]],
                   floor: float, margin: float) -> Tuple[List[Dict[str, Any]], List[str]]:
    """One rule per slice and check, with the numbers and a sentence: the accuracy floor, and
    (with a baseline) the largest drop allowed against it. Pass or fail is TFMA's own verdict."""
    failed, other = _failed_rules(evaluation_uri)
    slices = [("", candidate.get("overall", {}), (baseline or {}).get("overall"))]
    slices += [(name, values, (baseline or {}).get("by_length_bucket", {}).get(name))
               for name, values in candidate.get("by_length_bucket", {}).items()]
    rules = []
    for name, values, base in slices:
        value = values.get("accuracy")
        if value is None:
            continue
        where = f"slice {name} words ({values.get('example_count', '?')} reviews): " if name else ""
        passed = (name, False) not in failed
        rules.append({"slice": name or "overall", "metric": "accuracy", "kind": "floor", "value": value,
                      "bound": floor, "passed": passed, "gated": True,
                      "sentence": where + (f"accuracy {value:.3f} meets the floor {floor:.3f}" if passed else
                                           f"accuracy {value:.3f} is below the floor {floor:.3f}")})
        if base and base.get("accuracy") is not None:
            change, passed = value - base["accuracy"], (name, True) not in failed
            compared = f"accuracy {value:.3f} against the baseline's {base['accuracy']:.3f} ({change:+.3f})"
            rules.append({"slice": name or "overall", "metric": "accuracy", "kind": "change", "value": change,
                          "bound": -margin, "passed": passed, "gated": True,
                          "sentence": where + compared + (f" is within the allowed drop of {margin:.3f}" if passed
                                                          else f" drops more than the allowed {margin:.3f}")})
    return rules, other


def _read_json(uri: str) -> Optional[Dict[str, Any]]:
    from tensorflow.io import gfile  # pylint: disable=import-outside-toplevel

    if not gfile.exists(uri):
        return None
    with gfile.GFile(uri) as handle:
        return json.load(handle)


def build_summary(store: metadata_store.MetadataStore, executions: Dict[str, Dict[str, Any]],
                  config: Dict[str, Any]) -> Dict[str, Any]:
    """`executions`: {node id: {'execution_id', 'cached', 'seconds'}} as the runner recorded them;
    `config`: the run's PipelineConfig as a dict (for the blessing thresholds)."""
    summary: Dict[str, Any] = {"components": executions}
    example_gen = executions.get("ImdbExampleGen", {})
    if example_gen.get("execution_id"):
        report = output_artifacts(store, example_gen["execution_id"]).get("ingestion_report")
        ingestion = _read_json(report[0].uri + "/ingestion_report.json") if report else None
        if ingestion:
            summary["data"] = {k: ingestion[k] for k in ("examples_per_split", "rejected", "rejected_by_reason")}
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
        outputs = output_artifacts(store, evaluator["execution_id"])
        evaluation = outputs["evaluation"][0].uri
        summary["eval_metrics"] = evaluation_metrics(evaluation) or {"overall": {}, "by_length_bucket": {}}
        summary["baseline_metrics"] = evaluation_metrics(evaluation, model_name=BASELINE_MODEL)
        summary["blessed"] = bool(_custom(outputs["blessing"][0], "blessed", 0))
        rules, other = blessing_rules(evaluation, summary["eval_metrics"], summary["baseline_metrics"],
                                      float(config["accuracy_threshold"]), float(config["baseline_margin"]))
        summary["blessing_rules"] = rules
        summary["blessing_reasons"] = [rule["sentence"] for rule in rules if not rule["passed"]] + other
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
        lines.append(f"  blessed: {'yes' if summary['blessed'] else 'NO'}")
        lines.extend(f"    {'ok  ' if rule['passed'] else 'FAIL'} {rule['sentence']}"
                     for rule in summary.get("blessing_rules", []))
        lines.extend(f"    FAIL {reason}" for reason in summary.get("blessing_reasons", [])
                     if reason not in {rule["sentence"] for rule in summary.get("blessing_rules", [])})
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
