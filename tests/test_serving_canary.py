"""ServingCanary: real SavedModels, loaded in a fresh process like a server would, must answer the
canaries sensibly and in time; the verdict names the failed canary and the real Pusher obeys it."""
import json

import pytest

from components.serving_canary import (NOT_BLESSED_FILE, PROCESS_LOG_FILE, REPORT_FILE, BLESSED_FILE, ServingCanary,
                                       canaries_parameter, judge, parse_canaries)
from corpus import NEGATIVE, POSITIVE
from models.errors import UserError

# Corpus-appropriate canaries, as the end-to-end runs pass them: the clear ones must be right; the
# negation is reported only (a word-counting model gets it wrong, and that must not refuse it).
CANARIES = [(f"a {POSITIVE[0]} and {POSITIVE[1]} film", 1), (f"{POSITIVE[2]}, {POSITIVE[3]} acting", 1),
            (f"a {NEGATIVE[0]} and {NEGATIVE[1]} film", 0), (f"{NEGATIVE[2]}, {NEGATIVE[3]} plot", 0),
            (f"not {POSITIVE[0]} at all", 0, False)]
SLOW_SECONDS = 8.0


def save_word_counting_model(path, mode="sensible"):
    """serving_default(text) -> probability, label from positive minus negative corpus words;
    `inverted` flips it, `nan_on_long` answers NaN for texts over 100 kB, `slow` busy-waits first."""
    import tensorflow as tf
    from tensorflow.python.data.experimental.ops import testing as tf_data_testing

    class WordCounter(tf.Module):
        def __init__(self):
            super().__init__()
            words = POSITIVE + NEGATIVE
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(words, [1.0] * len(POSITIVE) + [-1.0] * len(NEGATIVE)), 0.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            words = tf.strings.split(tf.strings.regex_replace(tf.strings.lower(text), "[^a-z]", " "))
            probability = tf.sigmoid(2.0 * tf.reduce_sum(self.table.lookup(words), axis=1))
            if mode == "inverted":
                probability = 1.0 - probability
            if mode == "nan_on_long":
                probability = tf.where(tf.strings.length(text) > 100_000, float("nan"), probability)
            if mode == "slow":  # an idle wait (tf.data's sleep), not a busy one: other tests run meanwhile
                pause = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).apply(
                    tf_data_testing.sleep(int(SLOW_SECONDS * 1e6)))
                with tf.control_dependencies([pause.reduce(tf.constant(0, tf.int64), lambda a, b: a + b)]):
                    probability = tf.identity(probability)
            return {"probability": probability, "label": tf.cast(probability >= 0.5, tf.int64)}

    module = WordCounter()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})


def model_blessing(blessed):
    from tfx.types import standard_artifacts

    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("blessed", 1 if blessed else 0)
    return blessing


def run_canary(folder, model_uri, blessed=True, max_seconds=10.0, canaries=CANARIES):
    """Runs the component's executor; (InfraBlessing artifact, its folder, canary_report.json)."""
    from tfx.types import standard_artifacts

    model = standard_artifacts.Model()
    model.uri = model_uri
    infra = standard_artifacts.InfraBlessing()
    infra.uri = str(folder / "infra")
    ServingCanary.EXECUTOR_SPEC.executor_class().Do(
        {"model": [model], "model_blessing": [model_blessing(blessed)]}, {"blessing": [infra]},
        {"max_seconds": max_seconds, "canaries": canaries_parameter(canaries)})
    return infra, folder / "infra", json.loads((folder / "infra" / REPORT_FILE).read_text())


@pytest.fixture(scope="module")
def canary_runs(tmp_path_factory):
    """Every case at once (each its own fresh process, as in a run): {case: run_canary's answer}.
    A fresh TensorFlow process takes seconds to start; in parallel the cases cost about one."""
    from concurrent.futures import ThreadPoolExecutor
    from tfx.utils import path_utils

    root = tmp_path_factory.mktemp("canary")
    cases = {"sensible": {}, "inverted": {}, "nan_on_long": {}, "slow": {"max_seconds": 1.0}}
    uris = {mode: str(root / "models" / mode) for mode in cases}
    for mode, uri in uris.items():
        save_word_counting_model(path_utils.serving_model_path(uri), mode)
    uris["refused"], cases["refused"] = str(root / "models" / "no-such-model"), {"blessed": False}
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = {case: pool.submit(run_canary, root / case, uris[case], **kwargs) for case, kwargs in cases.items()}
        return {case: future.result() for case, future in futures.items()}


def pusher_accepts(infra, blessed=True) -> bool:
    from tfx.components.pusher import executor as pusher_executor

    return pusher_executor.Executor().CheckBlessing({"model_blessing": [model_blessing(blessed)],
                                                     "infra_blessing": [infra]})


def by_name(report, prefix):
    [row] = [row for row in report["canaries"] if row["name"].startswith(prefix)]
    return row


def test_a_sensible_model_passes_and_the_pusher_accepts_it(canary_runs):
    infra, folder, report = canary_runs["sensible"]
    assert report["passed"] and report["verdict"].startswith("servable: all 4 clear canaries right")
    assert pusher_accepts(infra)
    assert infra.get_int_custom_property("blessed") == 1 and (folder / BLESSED_FILE).exists()
    assert (folder / PROCESS_LOG_FILE).exists()
    assert all(row["passed"] for row in report["canaries"])
    assert all(row["right"] for row in report["canaries"] if row["required"])
    negation = by_name(report, "negative: not")
    assert negation["right"] is False and negation["required"] is False   # reported, not required
    for name in ("empty review", "1 MB review", "invalid UTF-8 bytes"):
        assert 0.0 <= by_name(report, name)["probability"] <= 1.0
    assert by_name(report, "1 MB review")["bytes"] == 1_000_000
    for key in ("load_seconds", "call_seconds", "total_seconds"):
        assert report[key] > 0
    assert report["total_seconds"] >= report["load_seconds"] + report["call_seconds"]


def test_an_inverted_model_fails_naming_a_clear_canary_and_is_not_pushed(canary_runs):
    infra, folder, report = canary_runs["inverted"]
    assert not report["passed"] and not pusher_accepts(infra)
    assert infra.get_int_custom_property("blessed") == 0 and (folder / NOT_BLESSED_FILE).exists()
    assert report["verdict"].startswith(f"not servable: canary 'clear positive: a {POSITIVE[0]} and {POSITIVE[1]} "
                                        "film': probability 0.018 (negative), expected positive (and 3 more)")


def test_a_model_that_answers_nan_on_a_long_review_fails_naming_it(canary_runs):
    infra, _, report = canary_runs["nan_on_long"]
    assert not report["passed"] and not pusher_accepts(infra)
    assert report["verdict"] == "not servable: canary '1 MB review': probability nan, not a number in [0, 1]"
    assert by_name(report, "clear positive: a")["passed"] and by_name(report, "clear negative: a")["passed"]


def test_a_model_slower_than_the_bound_is_stopped_and_fails(canary_runs):
    infra, _, report = canary_runs["slow"]
    assert not report["passed"] and not pusher_accepts(infra)
    assert report["verdict"].startswith("not servable: the canary call did not finish within")
    assert report["verdict"].endswith("and was stopped (limit 1.00 s)")
    assert report["call_seconds"] >= 7.0            # 2 x 1 s + 5 s of grace after the load, then stopped
    assert report["call_seconds"] < SLOW_SECONDS     # ... and not waited for


def test_a_model_the_gate_refused_is_not_even_loaded(canary_runs):
    infra, folder, report = canary_runs["refused"]
    assert report == {"passed": False, "skipped": True,
                      "verdict": "skipped: the model was not blessed, so it was not loaded"}
    assert infra.get_int_custom_property("blessed") == 0 and (folder / NOT_BLESSED_FILE).exists()
    assert not (folder / PROCESS_LOG_FILE).exists()
    assert not pusher_accepts(infra, blessed=False)


# --------------------------------------------------------------------------- the verdict, without a process

def fake_result(probabilities, call_seconds=0.1, **extra):
    return dict({"probabilities": probabilities, "labels": None, "load_seconds": 1.0, "call_seconds": call_seconds,
                 "total_seconds": 5.0}, **extra)


def test_a_call_slower_than_the_bound_fails_even_when_every_answer_is_right():
    canaries = parse_canaries(canaries_parameter([("good", 1), ("bad", 0)]))
    right = [0.9, 0.1, 0.5, 0.5, 0.5]
    assert judge(canaries, fake_result(right), 1.0)["passed"]
    report = judge(canaries, fake_result(right, call_seconds=1.5), 1.0)
    assert report["verdict"] == "not servable: the canary call took 1.50 s, more than the 1.00 s allowed"


def test_a_model_that_does_not_load_is_not_servable_whatever_else():
    canaries = parse_canaries(canaries_parameter([("good", 1)]))
    report = judge(canaries, {"load_error": "the model has no 'serving_default' signature", "total_seconds": 9.0}, 5.0)
    assert report["verdict"] == ("not servable: the model did not load in a fresh process: the model has no "
                                 "'serving_default' signature")
    assert not report["passed"] and not any(row["passed"] for row in report["canaries"])


def test_out_of_range_and_failing_canaries_are_named():
    canaries = parse_canaries(canaries_parameter([("good", 1), ("bad", 0)]))
    report = judge(canaries, fake_result([0.9, 0.1, 1.5, 0.5, 0.5]), 1.0)
    assert report["verdict"] == "not servable: canary 'empty review': probability 1.5, not a number in [0, 1]"
    report = judge(canaries, fake_result(None, call_error="boom", errors={"4": "invalid UTF-8"}), 1.0)
    assert report["verdict"] == "not servable: canary 'invalid UTF-8 bytes': the model failed on it (invalid UTF-8)"
    assert report["canaries"][4]["probability"] is None and not report["canaries"][4]["passed"]


def test_canaries_parameter_default_and_checks():
    default = parse_canaries("")
    assert sum(c["required"] for c in default) == 6 and any(c["text"] == b"" for c in default)
    assert [c["name"] for c in default[-3:]] == ["empty review", "1 MB review", "invalid UTF-8 bytes"]
    with pytest.raises(UserError, match="required to be right but has no expected label"):
        parse_canaries(json.dumps([{"text": "meh", "expected": None, "required": True}]))
    with pytest.raises(UserError, match="expected label 1, 0 or null"):
        parse_canaries(json.dumps([["great", "positive"]]))
