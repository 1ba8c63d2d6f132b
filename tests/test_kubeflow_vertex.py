"""The compiled vertex spec run twice by the KFP harness in Vertex mode (typed inputs, resource
names, resolver tasks answered from the artifacts of earlier runs): the second run must find the
first run's model as its baseline. Its own file so that xdist runs it beside the OSS runs.
"""
import json
import os

import pytest

from test_kubeflow_harness import RESOLVER, compile_for_harness, log_text, metadata
from testing.kfp_harness.harness import LocalKfpRun


@pytest.fixture(scope="session")
def vertex_runs(tmp_path_factory):
    """Two Vertex-mode runs on one root (this machine's Python): the second resolves the first's model."""
    tmp = tmp_path_factory.mktemp("harness-vertex")
    spec, config = compile_for_harness(tmp, "vertex")
    runs = []
    for _ in range(2):
        run = LocalKfpRun(spec, str(tmp / "root"), mode="vertex")
        run.run()
        run.serving_dir = config.resolved_serving_dir
        runs.append(run)
    return runs



@pytest.mark.e2e
def test_vertex_mode_keeps_types_answers_resolvers_and_pushes(vertex_runs):
    """The whole Vertex-mode run: typed inputs (no repair needed), the Resolver answered from the
    artifact registry (nothing blessed yet), and a blessed model pushed."""
    vertex_run = vertex_runs[0]
    how = {name: result.how for name, result in vertex_run.results.items()}
    resolvers = {f"{RESOLVER}-model-blessing-resolver", f"{RESOLVER}-model-resolver"}
    assert {name for name, way in how.items() if way == "resolved"} == resolvers
    assert all(way == "executed" for name, way in how.items() if name not in resolvers)
    assert {"ImdbExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"} <= set(how)
    assert vertex_run.results[f"{RESOLVER}-model-resolver"].outputs == {"model": []}  # nothing blessed yet
    assert "executor input needed no repair" in log_text(vertex_run, "StatisticsGen")
    stats = vertex_run.results["StatisticsGen"].outputs["statistics"][0]
    assert stats["name"].startswith("projects/local/") and json.loads(stats["metadata"]["split_names"])
    assert metadata(vertex_run, "BlessingGate", "blessing")["blessed"] == 1
    assert metadata(vertex_run, "Pusher", "pushed_model")["pushed"] == 1
    assert any(os.path.isfile(os.path.join(vertex_run.serving_dir, v, "saved_model.pb"))
               for v in os.listdir(vertex_run.serving_dir))



@pytest.mark.e2e
def test_second_vertex_run_finds_the_first_model_as_its_baseline(vertex_runs):
    """BlessingGate's current_model_id is the model's resource name (the shim renames TFX's
    integer), and the blessing query, scoped to this pipeline, finds it: the Evaluator measures
    the candidate against the first run's model."""
    first, second = vertex_runs
    blessing = first.results["BlessingGate"].outputs["blessing"][0]
    model = first.results["Trainer"].outputs["model"][0]
    assert blessing["metadata"]["current_model_id"] == model["name"]
    assert blessing["metadata"]["pipeline_name"] == "imdb-sentiment"
    assert second.results[f"{RESOLVER}-model-blessing-resolver"].outputs["model_blessing"]
    assert second.results[f"{RESOLVER}-model-resolver"].outputs["model"][0]["uri"] == model["uri"]
    assert "'baseline_model': [Artifact(" in log_text(second, "Evaluator")
    with open(os.path.join(second.results["BlessingGate"].outputs["blessing"][0]["uri"], "blessing_rules.json"),
              encoding="utf-8") as handle:
        rules = json.load(handle)
    assert any(rule["kind"] == "ratchet" and "measured today" in rule["sentence"] for rule in rules)
