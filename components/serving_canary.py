"""ServingCanary: the candidate must load and answer sensibly in a fresh process before it is pushed.

TFX's InfraValidator starts TF Serving in Docker or Kubernetes, which a laptop user often lacks.
This loads the SavedModel the way a model server would (a new interpreter that imports only
TensorFlow, `tf.saved_model.load`, the raw-text signature) and calls it once with a batch of
canary reviews: sentiment canaries with known answers (clear ones must be right; negations and
the like are reported only) and robustness canaries every model gets (an empty review, a 1 MB
review, bytes that are not UTF-8). Every probability must be a number in [0, 1], and the call
(after the load) must finish within `max_seconds`. The verdict is recorded as TFX's
InfraValidator records it, so the stock Pusher's `infra_blessing` check reads it unchanged; the
details are in `canary_report.json` in the InfraBlessing folder.
"""
# No `from __future__ import annotations`: TFX reads the component's type hints at decoration time.
import base64
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import InfraBlessing, Model, ModelBlessing
from tfx.utils import io_utils, path_utils

from models import features, storage
from models.errors import UserError

log = logging.getLogger("imdb.canary")

REPORT_FILE = "canary_report.json"
PROCESS_LOG_FILE = "canary_process.log"
BLESSED_FILE = "INFRA_BLESSED"          # the names and property TFX's InfraValidator writes
NOT_BLESSED_FILE = "INFRA_NOT_BLESSED"
BLESSED_PROPERTY = "blessed"
VERDICT_PROPERTY = "canary_verdict"
LOAD_TIMEOUT_SECONDS = 600.0            # a fresh process that has not loaded the model by then never will

# (text, expected label: 1 positive, 0 negative, None for no expectation, required?)
Canary = Tuple[str, Optional[int], bool]
DEFAULT_CANARIES: Tuple[Canary, ...] = (
    ("An absolute masterpiece, wonderful acting and a moving story. One of the best films I have ever seen.", 1, True),
    ("I loved every minute of it: brilliant performances, a superb script and a beautiful score.", 1, True),
    ("A delightful, funny and touching film with a great cast. Highly recommended.", 1, True),
    ("The worst film I have ever seen, boring and awful. A complete waste of time.", 0, True),
    ("Terrible acting, a stupid plot and dreadful dialogue. I hated every minute of it.", 0, True),
    ("Dull, poorly made and painfully bad. Avoid this mess at all costs.", 0, True),
    ("This movie was not good at all.", 0, False),
    ("Not bad at all, I actually enjoyed it.", 1, False),
)
LONG_REVIEW_BYTES = 1_000_000


def robustness_canaries() -> List[Dict[str, Any]]:
    """What every model must survive with a number in [0, 1]; its label is not judged."""
    sentence = b"The plot wanders from scene to scene and the actors do what they can with it. "
    long_review = (sentence * (LONG_REVIEW_BYTES // len(sentence) + 1))[:LONG_REVIEW_BYTES]
    return [{"name": "empty review", "text": b"", "expected": None, "required": False},
            {"name": "1 MB review", "text": long_review, "expected": None, "required": False},
            {"name": "invalid UTF-8 bytes", "text": b"\xff\xfe a \xc3\x28 great \xa0\xa1 film \xe2\x82",
             "expected": None, "required": False}]


def canaries_parameter(canaries: Sequence[Union[Canary, Tuple[str, Optional[int]]]] = DEFAULT_CANARIES) -> str:
    """The `canaries` parameter (JSON) for a list of (text, expected label or None[, required]);
    a pair's canary is required to be right exactly when it has an expected label."""
    return json.dumps([{"text": item[0], "expected": item[1],
                        "required": bool(item[2]) if len(item) > 2 else item[1] is not None} for item in canaries])


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + "..."


def parse_canaries(parameter: str) -> List[Dict[str, Any]]:
    """The sentiment canaries of a `canaries` parameter (the default set when empty), named, then
    the robustness canaries."""
    items = json.loads(parameter) if parameter else json.loads(canaries_parameter())
    canaries = []
    for item in items:
        if isinstance(item, (list, tuple)):
            item = {"text": item[0], "expected": item[1] if len(item) > 1 else None,
                    "required": bool(item[2]) if len(item) > 2 else (len(item) > 1 and item[1] is not None)}
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or item.get("expected") not in (0, 1, None):
            raise UserError(f"Each canary must be a text with an expected label 1, 0 or null, not {item!r}.")
        expected, required = item.get("expected"), bool(item.get("required", item.get("expected") is not None))
        if required and expected is None:
            raise UserError(f"The canary {_short(item['text'])!r} is required to be right but has no expected label.")
        kind = {1: "positive", 0: "negative", None: "unlabelled"}[expected]
        canaries.append({"name": item.get("name") or f"{'clear ' if required else ''}{kind}: {_short(item['text'])}",
                         "text": item["text"].encode("utf-8"), "expected": expected, "required": required})
    return canaries + robustness_canaries()


# ---------------------------------------------------------------------------------------------
# The fresh process: imports TensorFlow only, as a model server would.
# ---------------------------------------------------------------------------------------------

_CHILD = r"""
import base64, json, os, sys, time, traceback
started = time.perf_counter()
work = sys.argv[1]
with open(os.path.join(work, "request.json")) as handle:
    request = json.load(handle)

def write(name, value):
    with open(os.path.join(work, name + ".partial"), "w") as handle:
        json.dump(value, handle)
    os.replace(os.path.join(work, name + ".partial"), os.path.join(work, name))

def last_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[-1][:300]

import tensorflow as tf
imported = time.perf_counter()
try:
    loaded = tf.saved_model.load(request["model_dir"])
    if request["signature"] not in loaded.signatures:
        raise ValueError("the model has no %r signature (it has %s)"
                       % (request["signature"], ", ".join(sorted(loaded.signatures)) or "none"))
    serve = loaded.signatures[request["signature"]]
    warmed = 0
    warmup = request["model_dir"].rstrip("/") + "/" + request["warmup_file"]
    if tf.io.gfile.exists(warmup):  # replayed while loading, as TF Serving does
        from tensorflow_serving.apis import prediction_log_pb2
        for record in tf.data.TFRecordDataset(warmup):
            logged = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
            loaded.signatures[logged.model_spec.signature_name or request["signature"]](
                **{name: tf.constant(tf.make_ndarray(value)) for name, value in logged.inputs.items()})
            warmed += 1
except Exception as error:
    traceback.print_exc()
    write("result.json", {"load_error": last_line(error), "import_seconds": imported - started})
    sys.exit(0)
load_seconds = time.perf_counter() - imported
write("loaded.json", {"import_seconds": imported - started, "load_seconds": load_seconds, "warmup_requests": warmed})
texts = [base64.b64decode(text) for text in request["texts"]]

def call(batch):
    outputs = serve(**{request["input"]: tf.constant(batch, dtype=tf.string)})
    probabilities = outputs[request["probability"]].numpy().reshape(-1).tolist()
    labels = outputs[request["label"]].numpy().reshape(-1).tolist() if request["label"] in outputs else None
    if len(probabilities) != len(batch):
        raise ValueError("%d probabilities for %d texts" % (len(probabilities), len(batch)))
    return probabilities, labels

result = {"import_seconds": imported - started, "load_seconds": load_seconds, "warmup_requests": warmed}
began = time.perf_counter()
try:
    result["probabilities"], result["labels"] = call(texts)
    result["call_seconds"] = time.perf_counter() - began
except Exception as error:
    traceback.print_exc()
    result["call_seconds"] = time.perf_counter() - began
    result["call_error"] = last_line(error)
    errors = {}
    for index, text in enumerate(texts):  # which canary breaks the model
        try:
            call([text])
        except Exception as single:
            errors[str(index)] = last_line(single)
    result["errors"] = errors
write("result.json", result)
sys.stdout.flush(); sys.stderr.flush()
os._exit(0)  # answered; skip C++ teardown, which aborts after S3 use ("pure virtual method called")
"""


def _wait_for(path: str, process: subprocess.Popen, deadline: float) -> bool:
    """True once `path` exists; False when the process ended without it or the deadline passed."""
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        if process.poll() is not None:
            return os.path.exists(path)
        time.sleep(0.02)
    return os.path.exists(path)


def run_in_fresh_process(model_dir: str, texts: List[bytes], max_seconds: float,
                         load_timeout: float = LOAD_TIMEOUT_SECONDS) -> Dict[str, Any]:
    """Loads `model_dir` in a new interpreter and calls the serving signature once on `texts`.

    Returns the child's figures (import/load/call seconds, probabilities, labels, errors) and
    `total_seconds` (process start to answer) and `log` (the child's output). A call still
    running `max_seconds` after it could have finished in time (twice the bound plus a few
    seconds) is stopped and reported as `timed_out`."""
    work = tempfile.mkdtemp(prefix="imdb-canary-")
    try:
        with open(os.path.join(work, "request.json"), "w", encoding="utf-8") as handle:
            json.dump({"model_dir": model_dir, "signature": features.SERVING_SIGNATURE, "input": features.RAW_TEXT,
                       "probability": features.PROBABILITY, "label": features.PREDICTED_LABEL,
                       "warmup_file": features.WARMUP_FILE,
                       "texts": [base64.b64encode(text).decode("ascii") for text in texts]}, handle)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        started = time.monotonic()
        loaded_at = answered_at = None
        killed = False
        with open(os.path.join(work, "process.log"), "wb") as output:
            process = subprocess.Popen([sys.executable, "-c", _CHILD, work], stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env)
            try:
                if _wait_for(os.path.join(work, "loaded.json"), process, started + load_timeout):
                    loaded_at = time.monotonic()
                deadline = loaded_at + 2 * max_seconds + 5 if loaded_at else started + load_timeout
                if _wait_for(os.path.join(work, "result.json"), process, deadline):
                    answered_at = time.monotonic()
                    process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass  # answered, but slow to exit: stopped below
            finally:
                if process.poll() is None:
                    killed = True
                    process.kill()
                    process.wait()
        result: Dict[str, Any] = {}
        for name in ("loaded.json", "result.json"):
            if os.path.exists(os.path.join(work, name)):
                with open(os.path.join(work, name), encoding="utf-8") as handle:
                    result.update(json.load(handle))
        now = time.monotonic()
        total = (answered_at or now) - started
        if answered_at is None:
            ended = f"was stopped after {now - started:.0f} s" if killed else f"died (exit code {process.returncode})"
            if loaded_at is None:
                result["load_error"] = f"the process {ended} before the model was loaded"
            elif killed:
                result["timed_out"] = True
                result["call_seconds"] = now - loaded_at
            else:
                result["call_error"] = f"the process {ended} during the call"
        result["total_seconds"] = total
        with open(os.path.join(work, "process.log"), encoding="utf-8", errors="replace") as handle:
            result["log"] = handle.read()
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Judging the answers.
# ---------------------------------------------------------------------------------------------

def _label_name(label: Optional[int]) -> str:
    return {1: "positive", 0: "negative"}.get(label, "no label")


def judge(canaries: List[Dict[str, Any]], result: Dict[str, Any], max_seconds: float) -> Dict[str, Any]:
    """The canary report: each canary's probability and outcome, the timings, `passed` and a
    one-sentence `verdict` naming the first failed canary."""
    probabilities = result.get("probabilities") or [None] * len(canaries)
    labels = result.get("labels") or [None] * len(canaries)
    errors = result.get("errors") or {}
    rows, problems = [], []
    for index, canary in enumerate(canaries):
        probability, label = probabilities[index], labels[index]
        row = {"name": canary["name"], "text": canary["text"][:200].decode("utf-8", errors="replace"),
               "bytes": len(canary["text"]), "expected": canary["expected"], "required": canary["required"],
               "probability": None, "label": None, "right": None, "passed": False, "problem": None}
        if str(index) in errors:
            row["problem"] = f"the model failed on it ({errors[str(index)]})"
        elif isinstance(probability, (int, float)) and math.isfinite(probability) and 0.0 <= probability <= 1.0:
            row["probability"] = float(probability)
            row["label"] = int(label) if isinstance(label, (int, float)) else int(probability >= 0.5)
            if canary["expected"] is not None:
                row["right"] = row["label"] == canary["expected"]
            if canary["required"] and not row["right"]:
                row["problem"] = (f"probability {probability:.3f} ({_label_name(row['label'])}), "
                                  f"expected {_label_name(canary['expected'])}")
        elif probability is not None:
            row["problem"] = f"probability {probability}, not a number in [0, 1]"
        row["passed"] = row["problem"] is None and "probabilities" in result
        rows.append(row)
        if row["problem"]:
            problems.append(f"canary '{canary['name']}': {row['problem']}")
    call_seconds = result.get("call_seconds")
    failure = None
    if result.get("load_error"):
        failure = f"the model did not load in a fresh process: {result['load_error']}"
    elif result.get("timed_out"):
        failure = (f"the canary call did not finish within {call_seconds:.1f} s and was stopped "
                   f"(limit {max_seconds:.2f} s)")
    elif problems:
        failure = problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    elif result.get("call_error") or "probabilities" not in result:
        failure = f"the canary call failed: {result.get('call_error', 'no answer')}"
    elif call_seconds > max_seconds:
        failure = f"the canary call took {call_seconds:.2f} s, more than the {max_seconds:.2f} s allowed"
    required = sum(1 for canary in canaries if canary["required"])
    verdict = ("not servable: " + failure if failure else
               f"servable: all {required} clear canaries right, every probability a number in [0, 1], and the call "
               f"took {call_seconds:.2f} s (limit {max_seconds:.2f} s); the other {len(canaries) - required} "
               "(negations, empty, 1 MB and invalid UTF-8 reviews) are reported but not required to be right")
    return {"passed": failure is None, "verdict": verdict,
            "max_seconds": max_seconds, "import_seconds": result.get("import_seconds"),
            "load_seconds": result.get("load_seconds"), "warmup_requests": result.get("warmup_requests", 0),
            "call_seconds": call_seconds,
            "total_seconds": result.get("total_seconds"), "canaries": rows}


def check_model(model_dir: str, canaries: List[Dict[str, Any]], max_seconds: float) -> Tuple[Dict[str, Any], str]:
    """(canary report, the fresh process's output)."""
    result = run_in_fresh_process(model_dir, [canary["text"] for canary in canaries], max_seconds)
    return judge(canaries, result, max_seconds), result.get("log", "")


def _mark(blessing: InfraBlessing, blessed: bool, verdict: str) -> None:
    io_utils.write_string_file(os.path.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE), "")
    blessing.set_int_custom_property(BLESSED_PROPERTY, 1 if blessed else 0)
    blessing.set_string_custom_property(VERDICT_PROPERTY, verdict)


@component
def ServingCanary(  # pylint: disable=invalid-name
        model: InputArtifact[Model], model_blessing: InputArtifact[ModelBlessing],
        blessing: OutputArtifact[InfraBlessing], max_seconds: Parameter[float], canaries: Parameter[str] = ""):
    if not max_seconds > 0:
        raise UserError(f"The serving canary's max_seconds must be positive, not {max_seconds}.")
    checked = parse_canaries(canaries)
    if model_blessing.get_int_custom_property(BLESSED_PROPERTY) != 1:
        verdict = "skipped: the model was not blessed, so it was not loaded"
        io_utils.write_string_file(os.path.join(blessing.uri, REPORT_FILE),
                                   json.dumps({"passed": False, "skipped": True, "verdict": verdict}, indent=2))
        _mark(blessing, False, verdict)
        log.info("%s", verdict)
        return
    # On S3 the fresh process loads a local copy, as tensorflow-io cannot load in place (models/storage.py).
    model_dir = storage.loadable_path(path_utils.serving_model_path(model.uri))
    report, process_log = check_model(model_dir, checked, max_seconds)
    io_utils.write_string_file(os.path.join(blessing.uri, REPORT_FILE), json.dumps(report, indent=2))
    io_utils.write_string_file(os.path.join(blessing.uri, PROCESS_LOG_FILE), process_log)
    for row in report["canaries"]:
        log.info("%s %s: probability %s%s", "ok  " if row["passed"] else "FAIL", row["name"],
                 "-" if row["probability"] is None else f"{row['probability']:.3f}",
                 f" ({row['problem']})" if row["problem"] else "")
    warmed = f" with {report['warmup_requests']} warmup requests" if report.get("warmup_requests") else ""
    log.info("%s (process start to answer %.1f s: load%s %s s, call %s s)", report["verdict"],
             report["total_seconds"] or 0.0, warmed, _seconds(report["load_seconds"]), _seconds(report["call_seconds"]))
    if not report["passed"] and process_log.strip():
        log.debug("canary process output:\n%s", process_log)
    _mark(blessing, report["passed"], report["verdict"])


def _seconds(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"
