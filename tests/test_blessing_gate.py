"""BlessingGate: floors for accuracy and AUC, slices gated only when big enough, and a bar set by
the best recent served model (or the live baseline) that a series of slightly worse models cannot
walk down; the verdict is one the real TFX Pusher reads."""
import json

import pytest

from components.blessing_gate import (METRICS_FILE, PIPELINE_NAME_PROPERTY, RULES_FILE, SERVED_METRICS_PATH,
                                      BlessingGate, blessing_rules, evaluation_metrics, is_blessed, recorded_metrics)

FLOORS = {"accuracy_floor": 0.80, "auc_floor": 0.85, "margin": 0.01, "min_slice_examples": 50}


def metrics(accuracy=0.90, auc=0.95, buckets=None, count=1000):
    return {"overall": {"accuracy": accuracy, "auc": auc, "example_count": count},
            "by_length_bucket": buckets or {}}


def rules_for(candidate, baseline=None, recorded=None, **settings):
    return blessing_rules(candidate, baseline, recorded or {}, **dict(FLOORS, **settings))


def failed(rules):
    return [rule for rule in rules if rule["gated"] and not rule["passed"]]


def the_rule(rules, kind, metric, slice_name="overall"):
    [rule] = [r for r in rules if r["kind"] == kind and r["metric"] == metric and r["slice"] == slice_name]
    return rule


# --------------------------------------------------------------------------- the rules on plain dicts

def test_a_good_first_model_is_blessed_and_says_there_is_nothing_to_compare_with():
    rules = rules_for(metrics())
    assert is_blessed(rules)
    ratchet = the_rule(rules, "ratchet", "accuracy")
    assert ratchet["gated"] is False and "no earlier model" in ratchet["sentence"]
    assert set(rules[0]) == {"slice", "metric", "kind", "value", "bound", "passed", "gated", "sentence"}


def test_accuracy_below_the_floor_is_refused_in_one_sentence_with_the_numbers():
    rules = rules_for(metrics(accuracy=0.871), accuracy_floor=0.88)
    assert not is_blessed(rules)
    [rule] = failed(rules)
    assert (rule["metric"], rule["kind"], rule["bound"]) == ("accuracy", "floor", 0.88)
    assert rule["sentence"] == "accuracy 0.871 is below the floor 0.880"


def test_auc_is_gated_too():
    rules = rules_for(metrics(accuracy=0.95, auc=0.80))
    [rule] = failed(rules)
    assert rule["metric"] == "auc" and rule["sentence"] == "AUC 0.800 is below the floor 0.850"


def test_a_missing_or_nan_auc_cannot_pass():
    rules = rules_for(metrics(auc=float("nan")))
    assert [r["metric"] for r in failed(rules)] == ["auc"]
    assert "not a number" in failed(rules)[0]["sentence"]


def test_a_small_slice_is_reported_but_not_gated_and_a_big_one_is():
    buckets = {"400+": {"accuracy": 0.30, "auc": 0.40, "example_count": 10},
               "000-099": {"accuracy": 0.95, "auc": 0.97, "example_count": 400}}
    rules = rules_for(metrics(buckets=buckets))
    assert is_blessed(rules)
    small = the_rule(rules, "floor", "accuracy", "400+")
    assert small["gated"] is False and small["value"] == 0.30
    assert small["sentence"] == "slice 400+ words (10 reviews): accuracy 0.300, not gated: fewer than 50 examples"

    buckets["400+"]["example_count"] = 50
    rules = rules_for(metrics(buckets=buckets))
    assert {(r["slice"], r["metric"]) for r in failed(rules)} == {("400+", "accuracy"), ("400+", "auc")}
    assert the_rule(rules, "floor", "accuracy", "400+")["sentence"] == \
        "slice 400+ words (50 reviews): accuracy 0.300 is below the floor 0.800"


@pytest.mark.parametrize("accuracy, blessed", [(0.86, False), (0.875, True), (0.87, True)])
def test_no_ratchet_the_best_recorded_model_less_the_margin_is_the_bar(accuracy, blessed):
    recorded = {"1795694006": {"accuracy": 0.88, "auc": 0.93}, "1795699999": {"accuracy": 0.85, "auc": 0.94}}
    rules = rules_for(metrics(accuracy=accuracy, auc=0.95), recorded=recorded)
    assert is_blessed(rules) is blessed
    rule = the_rule(rules, "ratchet", "accuracy")
    assert rule["bound"] == pytest.approx(0.87) and rule["gated"]
    assert "the best recent model, version 1795694006, had accuracy 0.880 (recorded when blessed)" in rule["sentence"]
    if not blessed:
        assert rule["sentence"].startswith("accuracy 0.860 is below the bar 0.870")


def test_a_series_of_slightly_worse_models_stops_at_the_best_one_less_one_margin():
    """Each push 0.009 worse than the last would pass a last-model rule forever; here the third stops."""
    recorded, accuracy, version = {}, 0.88, 1000
    outcomes = []
    for _ in range(4):
        rules = rules_for(metrics(accuracy=accuracy), recorded=recorded)
        outcomes.append(is_blessed(rules))
        if outcomes[-1]:
            recorded[str(version)] = {"accuracy": accuracy, "auc": 0.95}
            version += 1
        accuracy -= 0.009
    assert outcomes == [True, True, False, False]


def test_the_live_baseline_sets_the_bar_when_it_is_better_than_anything_recorded():
    recorded = {"1795694006": {"accuracy": 0.88, "auc": 0.93}}
    baseline = metrics(accuracy=0.92, auc=0.90)
    rules = rules_for(metrics(accuracy=0.90, auc=0.95), baseline=baseline, recorded=recorded)
    accuracy, auc = the_rule(rules, "ratchet", "accuracy"), the_rule(rules, "ratchet", "auc")
    assert not accuracy["passed"] and accuracy["bound"] == pytest.approx(0.91)
    assert "the served baseline had accuracy 0.920 (measured today on this eval split)" in accuracy["sentence"]
    assert auc["passed"] and auc["bound"] == pytest.approx(0.92) and "version 1795694006" in auc["sentence"]


# --------------------------------------------------------------------------- the serving folder

def push(serving, version, recorded=None, complete=True, raw=None):
    folder = serving / str(version)
    (folder / "variables").mkdir(parents=True)
    if complete:
        (folder / "saved_model.pb").write_bytes(b"graph")
    if recorded is not None or raw is not None:
        path = folder / SERVED_METRICS_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(raw if raw is not None else json.dumps(recorded))
    return folder


def test_recorded_metrics_skip_old_pushes_broken_files_half_pushes_and_foreign_folders(tmp_path):
    serving = tmp_path / "serving"
    push(serving, 100, {"accuracy": 0.80, "auc": 0.90})
    push(serving, 200, {"accuracy": 0.88, "auc": 0.93, "blessed_at": "2026-01-01T00:00:00+00:00"})
    push(serving, 300)                                                      # pushed before metrics were kept
    push(serving, 400, raw="{not json")                                     # damaged
    push(serving, 450, {"accuracy": None, "auc": 0.99})                     # no usable figure
    push(serving, 500, {"accuracy": 0.99, "auc": 0.99}, complete=False)     # a push still being copied
    (serving / "tmp-upload" / "assets.extra").mkdir(parents=True)
    (serving / "tmp-upload" / SERVED_METRICS_PATH).write_text(json.dumps({"accuracy": 0.99, "auc": 0.99}))

    assert recorded_metrics(str(serving), 5) == {"200": {"accuracy": 0.88, "auc": 0.93},
                                                 "100": {"accuracy": 0.80, "auc": 0.90}}
    assert recorded_metrics(str(serving), 1) == {"200": {"accuracy": 0.88, "auc": 0.93}}
    assert recorded_metrics(str(serving), 0) == {}
    assert recorded_metrics(str(tmp_path / "never-pushed"), 5) == {}
    rules = rules_for(metrics(accuracy=0.86), recorded=recorded_metrics(str(serving), 5))
    assert not is_blessed(rules) and "version 200" in the_rule(rules, "ratchet", "accuracy")["sentence"]


# --------------------------------------------------------------------------- the component

def write_evaluation(folder, candidate, baseline=None):
    """A TFMA output folder as the Evaluator writes it (eval_config.json and MetricsForSlice
    records, including the Keras compile metrics TFMA adds beside its own)."""
    import tensorflow as tf
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2
    from tensorflow_model_analysis.writers import eval_config_writer

    folder.mkdir(parents=True)
    models = {"candidate": candidate, "baseline": baseline} if baseline else {"": candidate}
    specs = [tfma.ModelSpec(name=name, is_baseline=name == "baseline", label_key="label") for name in models]
    config = tfma.EvalConfig(model_specs=specs, slicing_specs=[tfma.SlicingSpec(),
                                                               tfma.SlicingSpec(feature_keys=["length_bucket"])])
    (folder / "eval_config.json").write_text(eval_config_writer._serialize_eval_run(  # pylint: disable=protected-access
        config, "<user provided PCollection>", "<unknown>", {name: f"/models/{name}" for name in models}))
    with tf.io.TFRecordWriter(str(folder / "metrics-00000-of-00001.tfrecord")) as writer:
        slices = [((), "overall")] + [((("length_bucket", b),), b) for b in candidate["by_length_bucket"]]
        for key, name in slices:
            record = metrics_for_slice_pb2.MetricsForSlice()
            for feature, value in key:
                record.slice_key.single_slice_keys.add(column=feature, bytes_value=value.encode())
            for model_name, values in models.items():
                figures = values["overall"] if name == "overall" else values["by_length_bucket"][name]
                keras = record.metric_keys_and_values.add()  # the compiled Keras metric: not TFMA's accuracy
                keras.key.name, keras.key.model_name = "accuracy", model_name
                keras.value.double_value.value = 0.123
                for metric, tfma_name in (("accuracy", "binary_accuracy"), ("auc", "auc"),
                                          ("example_count", "example_count")):
                    entry = record.metric_keys_and_values.add()
                    entry.key.name, entry.key.model_name = tfma_name, model_name
                    entry.key.example_weighted.SetInParent()
                    entry.value.double_value.value = figures[metric]
            writer.write(record.SerializeToString())
    return str(folder)


def run_gate(tmp_path, evaluation, serving, **settings):
    from tfx.types import standard_artifacts

    model = standard_artifacts.Model()
    model.uri, model.id = str(tmp_path / "model"), 42
    evaluation_artifact = standard_artifacts.ModelEvaluation()
    evaluation_artifact.uri = evaluation
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    statistics = standard_artifacts.ExampleStatistics()  # the train split's, carried into the push
    statistics.uri, statistics.split_names = str(tmp_path / "statistics"), '["train"]'
    (tmp_path / "statistics" / "Split-train").mkdir(parents=True, exist_ok=True)
    (tmp_path / "statistics" / "Split-train" / "FeatureStats.pb").write_bytes(b"train statistics")
    params = dict(FLOORS, serving_dir=str(serving), recent_versions=5, **settings)
    BlessingGate.EXECUTOR_SPEC.executor_class().Do(
        {"evaluation": [evaluation_artifact], "model": [model], "statistics": [statistics]},
        {"blessing": [blessing]}, params)
    assert (tmp_path / "blessing" / "train_statistics.pb").read_bytes() == b"train statistics"
    return blessing


def pusher_accepts(blessing) -> bool:
    from tfx.components.pusher import executor as pusher_executor

    return pusher_executor.Executor().CheckBlessing({"model_blessing": [blessing]})


def test_reads_tfmas_candidate_and_baseline_and_ignores_keras_compile_metrics(tmp_path):
    buckets = {"000-099": {"accuracy": 0.91, "auc": 0.96, "example_count": 300}}
    path = write_evaluation(tmp_path / "eval", metrics(0.9, 0.95, buckets, 500), metrics(0.8, 0.9, buckets, 500))
    candidate, baseline = evaluation_metrics(path)
    assert candidate["overall"] == {"accuracy": 0.9, "auc": 0.95, "example_count": 500}
    assert candidate["by_length_bucket"]["000-099"]["accuracy"] == 0.91
    assert baseline["overall"]["accuracy"] == 0.8
    single, none = evaluation_metrics(write_evaluation(tmp_path / "first", metrics(0.7, 0.8, buckets, 500)))
    assert single["overall"]["accuracy"] == 0.7 and none is None


def test_the_gate_writes_a_blessing_the_real_pusher_accepts(tmp_path):
    serving = tmp_path / "serving"
    push(serving, 1795694006, {"accuracy": 0.88, "auc": 0.93})
    evaluation = write_evaluation(tmp_path / "eval", metrics(0.875, 0.94, count=500), metrics(0.86, 0.92, count=500))
    blessing = run_gate(tmp_path, evaluation, serving)
    assert pusher_accepts(blessing)
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_int_custom_property("current_model_id") == 42   # what the latest-blessed resolver pairs
    assert (tmp_path / "blessing" / "BLESSED").exists() and not (tmp_path / "blessing" / "NOT_BLESSED").exists()
    rules = json.loads((tmp_path / "blessing" / RULES_FILE).read_text())
    assert "version 1795694006" in the_rule(rules, "ratchet", "accuracy")["sentence"]
    recorded = json.loads((tmp_path / "blessing" / METRICS_FILE).read_text())
    assert (recorded["accuracy"], recorded["auc"], recorded["example_count"]) == (0.875, 0.94, 500)


def test_the_gate_refuses_a_ratcheting_model_and_the_real_pusher_refuses_it(tmp_path):
    serving = tmp_path / "serving"
    push(serving, 1795694006, {"accuracy": 0.88, "auc": 0.93})
    evaluation = write_evaluation(tmp_path / "eval", metrics(0.86, 0.94, count=500), metrics(0.85, 0.92, count=500))
    blessing = run_gate(tmp_path, evaluation, serving)
    assert not pusher_accepts(blessing)
    assert blessing.get_int_custom_property("blessed") == 0
    assert (tmp_path / "blessing" / "NOT_BLESSED").exists() and not (tmp_path / "blessing" / "BLESSED").exists()
    [rule] = failed(json.loads((tmp_path / "blessing" / RULES_FILE).read_text()))
    assert rule["kind"] == "ratchet" and rule["sentence"].startswith("accuracy 0.860 is below the bar 0.870")


def test_the_blessing_names_its_pipeline_and_the_stock_resolvers_still_pick_it(tmp_path):
    from tfx import v1 as tfx
    from tfx.types import standard_artifacts

    from components.baseline_strategy import LatestBlessedOtherThanCandidate

    evaluation = write_evaluation(tmp_path / "eval", metrics(0.9, 0.95, count=500))
    blessing = run_gate(tmp_path, evaluation, tmp_path / "serving", pipeline_name="imdb-sentiment")
    assert blessing.get_string_custom_property(PIPELINE_NAME_PROPERTY) == "imdb-sentiment"  # Vertex's query scope
    model, candidate = standard_artifacts.Model(), standard_artifacts.Model()
    model.id, candidate.id = 42, 43  # run_gate's model, and a newer unblessed one
    resolved = tfx.dsl.experimental.LatestBlessedModelStrategy().resolve_artifacts(
        None, {"model": [model, candidate], "model_blessing": [blessing]})
    assert resolved["model"] == [model] and resolved["model_blessing"] == [blessing]
    resolved = LatestBlessedOtherThanCandidate().resolve_artifacts(
        None, {"model": [model, candidate], "model_blessing": [blessing], "candidate": [candidate]})
    assert resolved["model"] == [model] and resolved["model_blessing"] == [blessing]


def test_without_a_pipeline_name_the_blessing_has_no_such_property(tmp_path):
    evaluation = write_evaluation(tmp_path / "eval", metrics(0.9, 0.95, count=500))
    blessing = run_gate(tmp_path, evaluation, tmp_path / "serving")
    assert not blessing.has_custom_property(PIPELINE_NAME_PROPERTY)
