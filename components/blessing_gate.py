"""BlessingGate: blesses a candidate only against floors and the best recent served model.

TFMA's change threshold compares the candidate with one baseline, the last blessed model, so a
series of retrains each a little worse walks served accuracy down to the absolute floor. Here the
bar is the best of the recent served versions (the metrics each had when it was blessed, kept
beside it in the serving folder, which every target shares) and of the live baseline measured on
today's eval split, less the margin; AUC is gated like accuracy; a slice is gated only when it has
enough examples to mean something. The rules are a pure function of plain dicts (`blessing_rules`);
the component only reads the evaluation and the serving folder and writes the verdict the way
TFX's Evaluator does, so the stock Pusher and the latest-blessed-model resolver read it unchanged.

Files in the ModelBlessing folder: `BLESSED`/`NOT_BLESSED` (as the Evaluator writes them),
`blessing_rules.json` (one object per rule) and `blessing_metrics.json` (the candidate's overall
figures; the Pusher copies it to `<serving>/<version>/assets.extra/` so later runs can read it).
Beside the Evaluator's properties the blessing records `pipeline_name`: Vertex's resolver query
searches the whole project's ML Metadata, and this is what scopes it to this pipeline (no stock
resolver reads it, so they behave as before).
"""
# No `from __future__ import annotations`: TFX reads the component's type hints at decoration time.
import datetime
import json
import logging
import math
import os
from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf
from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleStatistics, Model, ModelBlessing, ModelEvaluation
from tfx.utils import io_utils

from components.serving_dir import EXTRA_DIR, RELEASE_FILES, complete_versions, version_dir
from models.errors import UserError

log = logging.getLogger("imdb.blessing")

RULES_FILE = "blessing_rules.json"
METRICS_FILE, STATISTICS_FILE = RELEASE_FILES
SERVED_METRICS_PATH = f"{EXTRA_DIR}/{METRICS_FILE}"  # inside <serving>/<version>/, copied by the Pusher
GATED_METRICS = ("accuracy", "auc")
PIPELINE_NAME_PROPERTY = "pipeline_name"  # a string custom property of the blessing
# What is read of TFMA's output (also for the run summary): the gated metrics and the reported ones.
_TFMA_NAMES = {"binary_accuracy": "accuracy", "auc": "auc", "example_count": "example_count",
               "precision": "precision", "recall": "recall"}
_LABELS = {"accuracy": "accuracy", "auc": "AUC"}
_TOLERANCE = 1e-9  # 0.88 - 0.01 is 0.8699999999999999: a candidate at 0.87 is on the bar, not below it


# ---------------------------------------------------------------------------------------------
# The rules: plain dicts in, one dict per rule out.
# ---------------------------------------------------------------------------------------------

def _number(value: Any) -> Optional[float]:
    """The value as a float, or None when it is missing or not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _pair(value: float, bound: float) -> Tuple[str, str]:
    """Both numbers with 3 decimals, or 4 when 3 would print them equal."""
    digits = 4 if f"{value:.3f}" == f"{bound:.3f}" and value != bound else 3
    return f"{value:.{digits}f}", f"{bound:.{digits}f}"


def _rule(slice_name: str, metric: str, kind: str, value: Optional[float], bound: float, passed: bool,
          gated: bool, sentence: str) -> Dict[str, Any]:
    return {"slice": slice_name, "metric": metric, "kind": kind, "value": value, "bound": bound,
            "passed": passed, "gated": gated, "sentence": sentence}


def _floor_rules(slice_name: str, metrics: Dict[str, Any], floors: Dict[str, float],
                 min_slice_examples: int) -> List[Dict[str, Any]]:
    overall = slice_name == "overall"
    count = metrics.get("example_count")
    where = "" if overall else f"slice {slice_name} words ({count if count is not None else '?'} reviews): "
    gated = overall or (count is not None and count >= min_slice_examples)
    rules = []
    for metric in GATED_METRICS:
        label, floor, value = _LABELS[metric], floors[metric], _number(metrics.get(metric))
        if not gated:
            shown = f"{value:.3f}" if value is not None else "not a number"
            rules.append(_rule(slice_name, metric, "floor", value, floor, True, False,
                               f"{where}{label} {shown}, not gated: fewer than {min_slice_examples} examples"))
        elif value is None:
            rules.append(_rule(slice_name, metric, "floor", None, floor, False, True,
                               f"{where}{label} is missing or not a number, so it cannot meet the floor {floor:.3f}"))
        else:
            passed = value >= floor - _TOLERANCE
            shown, bound = _pair(value, floor)
            rules.append(_rule(slice_name, metric, "floor", value, floor, passed, True,
                               f"{where}{label} {shown} " + ("meets" if passed else "is below") + f" the floor {bound}"))
    return rules


def _ratchet_rules(candidate: Dict[str, Any], baseline: Optional[Dict[str, Any]],
                   recorded: Dict[str, Dict[str, Any]], margin: float) -> List[Dict[str, Any]]:
    rules = []
    for metric in GATED_METRICS:
        label, value = _LABELS[metric], _number(candidate.get(metric))
        contenders = []  # (figure, who set it); the live baseline first, so it wins a tie
        if baseline and _number(baseline.get(metric)) is not None:
            contenders.append((_number(baseline[metric]), f"the served baseline had {label} {{best:.3f}} "
                                                          "(measured today on this eval split)"))
        for version in sorted(recorded, key=int, reverse=True):
            figure = _number(recorded[version].get(metric))
            if figure is not None:
                contenders.append((figure, f"the best recent model, version {version}, had {label} "
                                           "{best:.3f} (recorded when blessed)"))
        if not contenders:
            rules.append(_rule("overall", metric, "ratchet", value, None, True, False,
                               f"{label}: no earlier model to compare with (no served version has recorded "
                               "metrics and there is no baseline)"))
            continue
        best, who = max(contenders, key=lambda contender: contender[0])
        bar = round(best - margin, 12)  # 0.88 - 0.01 is 0.8699999999999999
        reference = who.format(best=best) + f", less the margin {margin:.3f}"
        if value is None:
            rules.append(_rule("overall", metric, "ratchet", None, bar, False, True,
                               f"{label} is missing or not a number, so it cannot clear the bar {bar:.3f}: {reference}"))
            continue
        passed = value >= bar - _TOLERANCE
        shown, bound = _pair(value, bar)
        rules.append(_rule("overall", metric, "ratchet", value, bar, passed, True,
                           f"{label} {shown} " + ("clears" if passed else "is below") + f" the bar {bound}: {reference}"))
    return rules


def blessing_rules(candidate: Dict[str, Any], baseline: Optional[Dict[str, Any]],
                   recorded: Dict[str, Dict[str, Any]], accuracy_floor: float, auc_floor: float, margin: float,
                   min_slice_examples: int) -> List[Dict[str, Any]]:
    """Every rule with its numbers and one sentence.

    `candidate` and `baseline`: {'overall': {'accuracy', 'auc', 'example_count'}, 'by_length_bucket':
    {bucket: {...}}} as measured by TFMA on this run's eval split (baseline None without one);
    `recorded`: {version: {'accuracy', 'auc'}} of recent served versions, as recorded when each was
    blessed. A rule with `gated` False is reported only; the model is blessed when every gated rule
    passed (`is_blessed`)."""
    floors = {"accuracy": accuracy_floor, "auc": auc_floor}
    overall = candidate.get("overall") or {}
    rules = _floor_rules("overall", overall, floors, min_slice_examples)
    for bucket, metrics in sorted((candidate.get("by_length_bucket") or {}).items()):
        rules += _floor_rules(bucket, metrics, floors, min_slice_examples)
    return rules + _ratchet_rules(overall, (baseline or {}).get("overall"), recorded, margin)


def is_blessed(rules: List[Dict[str, Any]]) -> bool:
    return all(rule["passed"] for rule in rules if rule["gated"])


# ---------------------------------------------------------------------------------------------
# Reading the evaluation and the serving folder.
# ---------------------------------------------------------------------------------------------

def _model_names(evaluation_uri: str) -> Tuple[Optional[str], Optional[str]]:
    """(candidate, baseline) model names of a TFMA run: ('candidate', 'baseline') with a baseline,
    (None, None) for a single model (TFMA's own way of asking for the only one)."""
    from tensorflow_model_analysis.writers import eval_config_writer  # pylint: disable=import-outside-toplevel

    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    specs = list(eval_config.model_specs) if eval_config else []
    baselines = [spec.name for spec in specs if spec.is_baseline]
    candidates = [spec.name for spec in specs if not spec.is_baseline]
    if not baselines:
        return None, None
    return (candidates[0] if candidates else None), baselines[0]


def _tfma_metrics(evaluation_uri: str, model_name: Optional[str]) -> Optional[Dict[str, Any]]:
    import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel  (seconds to import)

    try:
        result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
    except (IndexError, ValueError):  # TFMA's ways of saying "no metrics for that model"
        return None
    overall: Dict[str, Any] = {}
    by_bucket: Dict[str, Dict[str, Any]] = {}
    for slice_key, by_output in result.slicing_metrics:
        flat: Dict[str, Any] = {}
        for by_sub_key in by_output.values():
            for values in by_sub_key.values():
                for name, value in values.items():
                    if name in _TFMA_NAMES and isinstance(value, dict) and "doubleValue" in value:
                        number = float(value["doubleValue"])
                        flat[_TFMA_NAMES[name]] = number if math.isfinite(number) else None
        if flat.get("example_count") is not None:
            flat["example_count"] = int(flat["example_count"])
        if not slice_key:
            overall = flat
        else:
            by_bucket[", ".join(str(value) if key == "length_bucket" else f"{key}={value}"
                                for key, value in slice_key)] = flat
    if not overall and not by_bucket:
        return None
    return {"overall": overall, "by_length_bucket": dict(sorted(by_bucket.items()))}


def evaluation_metrics(evaluation_uri: str) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """(candidate, baseline or None) metrics of the Evaluator's output, in `blessing_rules`' shape."""
    candidate_name, baseline_name = _model_names(evaluation_uri)
    candidate = _tfma_metrics(evaluation_uri, candidate_name) or {"overall": {}, "by_length_bucket": {}}
    baseline = _tfma_metrics(evaluation_uri, baseline_name) if baseline_name else None
    return candidate, baseline


def _read_recorded(path: str) -> Optional[Dict[str, float]]:
    try:
        with tf.io.gfile.GFile(path) as handle:
            data = json.load(handle)
    except (tf.errors.OpError, ValueError, UnicodeDecodeError) as error:
        log.warning("ignoring %s: not readable JSON (%s)", path, str(error).splitlines()[0] if str(error) else error)
        return None
    figures = {metric: _number(data.get(metric)) if isinstance(data, dict) else None for metric in GATED_METRICS}
    if None in figures.values():
        log.warning("ignoring %s: it has no numeric accuracy and AUC", path)
        return None
    return figures


def recorded_metrics(serving_dir: str, recent_versions: int) -> Dict[str, Dict[str, float]]:
    """{version: {'accuracy', 'auc'}} of the `recent_versions` newest complete served versions that
    recorded their metrics when blessed. Folders that are not versions, half-pushed versions and
    versions pushed before metrics were recorded are skipped."""
    if not serving_dir or recent_versions < 1:
        return {}
    found: Dict[str, Dict[str, float]] = {}
    for version in complete_versions(serving_dir):
        path = os.path.join(version_dir(serving_dir, version), SERVED_METRICS_PATH)
        figures = _read_recorded(path) if tf.io.gfile.exists(path) else None
        if figures is not None:
            found[version] = figures
            if len(found) == recent_versions:
                break
    return found


# ---------------------------------------------------------------------------------------------
# The component.
# ---------------------------------------------------------------------------------------------

def _write_json(path: str, value: Any) -> None:
    io_utils.write_string_file(path, json.dumps(value, indent=2, sort_keys=True))


@component
def BlessingGate(  # pylint: disable=invalid-name
        evaluation: InputArtifact[ModelEvaluation], model: InputArtifact[Model],
        statistics: InputArtifact[ExampleStatistics], blessing: OutputArtifact[ModelBlessing],
        accuracy_floor: Parameter[float], auc_floor: Parameter[float], margin: Parameter[float],
        min_slice_examples: Parameter[int], serving_dir: Parameter[str], recent_versions: Parameter[int],
        pipeline_name: Parameter[str] = ""):
    # The executor sees no pipeline name of its own (KFP's container entrypoint gives it no
    # pipeline_info), so the definition passes it in.
    if margin < 0 or recent_versions < 0 or min_slice_examples < 0:
        raise UserError("The blessing gate needs a margin, min_slice_examples and recent_versions that are not negative.")
    candidate, baseline = evaluation_metrics(evaluation.uri)
    recorded = recorded_metrics(serving_dir, recent_versions)
    rules = blessing_rules(candidate, baseline, recorded, accuracy_floor, auc_floor, margin, min_slice_examples)
    blessed = is_blessed(rules)
    for rule in rules:
        log.info("%s %s", "ok  " if rule["passed"] else "FAIL", rule["sentence"])
    overall = candidate.get("overall", {})
    _write_json(os.path.join(blessing.uri, RULES_FILE), rules)
    _write_json(os.path.join(blessing.uri, METRICS_FILE), {
        "accuracy": overall.get("accuracy"), "auc": overall.get("auc"), "example_count": overall.get("example_count"),
        "blessed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model.uri, "evaluation": evaluation.uri})
    # The training data's statistics travel with the model: the next run's drift reference.
    io_utils.copy_file(os.path.join(artifact_utils.get_split_uri([statistics], "train"), "FeatureStats.pb"),
                       os.path.join(blessing.uri, STATISTICS_FILE), overwrite=True)
    # What TFX's Evaluator records: the Pusher reads `blessed`; the latest-blessed-model resolver
    # pairs `current_model_id` with the Model artifact.
    blessing.set_string_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
    blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    io_utils.write_string_file(os.path.join(blessing.uri, evaluator_constants.BLESSED_FILE_NAME if blessed
                                            else evaluator_constants.NOT_BLESSED_FILE_NAME), "")
    blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                     evaluator_constants.BLESSED_VALUE if blessed
                                     else evaluator_constants.NOT_BLESSED_VALUE)
    if pipeline_name:
        blessing.set_string_custom_property(PIPELINE_NAME_PROPERTY, pipeline_name)
    log.info("blessed: %s (%d rules, %d recent served versions with recorded metrics%s)", "yes" if blessed else "NO",
             len(rules), len(recorded), ", and the baseline" if baseline else "")
