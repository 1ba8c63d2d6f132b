"""End to end: the real pipeline (LocalDagRunner, Beam, MLMD on SQLite) through the real CLI.

One generated corpus and runs sharing one workdir (first run; an unchanged re-run with an
impossible threshold; refreshes that must not reach serving) and runs on bad data; each run is a
subprocess of the installed `imdb-pipeline`. The crashes are tests/test_e2e_crashes.py.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SMALL_SETTINGS
from corpus import write_aclimdb

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).parent / "imdb-pipeline")
ALL_COMPONENTS = {"ImdbExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataValidationGate",
                  "Transform", "Trainer", "latest_blessed_model_resolver", "Evaluator", "BlessingGate",
                  "ServingCanary", "Pusher"}


def cli(*args, stdin=None, timeout=900):
    return subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, timeout=timeout)


def versions(serving_dir: Path):
    return sorted(p.name for p in serving_dir.iterdir() if p.name.isdigit()) if serving_dir.exists() else []


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = write_aclimdb(root / "data", n_train=320, n_test=40)
    add_mislabelled_eval_reviews(data)
    config = root / "small.json"
    config.write_text(json.dumps(SMALL_SETTINGS))
    workdir = root / "workdir"
    results = {"workdir": workdir, "data": data}
    # The re-run changes nothing but the blessing floor, so it is both "unchanged data and code" and
    # "a model that cannot be blessed" (one Evaluator run fewer in the suite): a floor of 1.0, which
    # no model meets on an eval split holding mislabelled reviews.
    for name, extra in (("first", []), ("rerun", ["--accuracy-threshold", "1.0"])):
        proc = cli("run", "--data", str(data), "--workdir", str(workdir), "--config", str(config), *extra)
        assert proc.returncode == 0, f"{name} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        results[name] = {"stdout": proc.stdout, "stderr": proc.stderr, "summary": json.loads((workdir / "run_summary.json").read_text()),
                         "versions": versions(workdir / "serving")}
    results["impossible"] = results["rerun"]
    return results


def test_first_run_executes_every_component_and_pushes(runs):
    summary = runs["first"]["summary"]
    assert summary["status"] == "succeeded"
    assert set(summary["components"]) == ALL_COMPONENTS
    assert not any(info["cached"] for info in summary["components"].values())
    assert summary["blessed"] is True and summary["pushed"] is True
    assert summary["eval_metrics"]["overall"]["accuracy"] >= 0.5
    assert summary["eval_metrics"]["overall"]["example_count"] > 0
    assert set(summary["eval_metrics"]["by_length_bucket"]) == {"000-099"}
    assert summary["data"]["examples_per_split"]["test"] == 40
    assert len(runs["first"]["versions"]) == 1
    pushed = Path(summary["pushed_path"])
    assert pushed.parent == runs["workdir"] / "serving" and (pushed / "saved_model.pb").exists()
    for line in ("ImdbExampleGen started", "Trainer finished", "Run summary", "blessed: yes",
                 "ok   accuracy", "meets the floor 0.500"):
        assert line in runs["first"]["stdout"]
    history = summary["training"]["history"]
    assert len(history) == SMALL_SETTINGS["epochs"] * 2 and {"loss", "val_loss", "val_accuracy"} <= set(history[0])


def test_console_is_quiet_and_the_run_log_has_everything(runs):
    shown = runs["first"]["stdout"] + runs["first"]["stderr"]
    for noise in ("cuda", "oneDNN", "WARNING:absl", "Instructions for updating", "FutureWarning", "I0000"):
        assert noise not in shown, noise
    assert runs["first"]["stderr"] == ""
    assert "epoch 1 done" in runs["first"]["stdout"]  # training progress stays on the terminal
    logged = Path(runs["first"]["summary"]["log"]).read_text()
    for line in ("Trainer started", "no anomalies in any split", "epoch 1 done", "model exported to",
                 "Component Trainer is running", "Run summary"):
        assert line in logged, line
    assert "cuda" in logged.lower() or "oneDNN" in logged  # TensorFlow's native lines went here


def test_every_run_writes_an_html_report(runs):
    for name in ("first", "impossible"):
        report = Path(runs[name]["summary"]["report_path"])
        assert report == runs["workdir"] / "report.html"
    page = (runs["workdir"] / "report.html").read_text()   # the last run's: not blessed
    assert "is below the floor 1.000" in page and "Training curves" in page


def test_predict_scores_raw_text(runs):
    proc = cli("predict", "--workdir", str(runs["workdir"]), "--json",
               "A wonderful, excellent film.<br />Loved it", "Terrible, awful and boring. The worst.")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [set(row) for row in rows] == [{"text", "probability", "label"}] * 2
    assert rows[0]["probability"] > rows[1]["probability"]
    assert rows[0]["label"] == 1 and rows[1]["label"] == 0
    stdin_proc = cli("predict", "--workdir", str(runs["workdir"]), stdin="great superb\n\nworst waste\n")
    lines = stdin_proc.stdout.splitlines()  # one row per input line: the blank one says so
    assert stdin_proc.returncode == 0 and len(lines) == 3 and lines[1] == "-\t-\t(blank line: not scored)"


def test_exported_model_serves_text_and_examples_alike(runs):
    import tensorflow as tf

    model = tf.saved_model.load(runs["first"]["summary"]["pushed_path"])
    assert {"serving_default", "serving_examples"} <= set(model.signatures)
    texts = ["great fun", "dull stupid waste"]
    by_text = model.signatures["serving_default"](text=tf.constant(texts))["probability"].numpy()
    examples = [tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString() for t in texts]
    by_example = model.signatures["serving_examples"](examples=tf.constant(examples))["probability"].numpy()
    assert by_text.tolist() == pytest.approx(by_example.tolist(), abs=1e-6)


def test_the_pushed_model_holds_only_functions_its_graph_reaches(runs):
    """Training leaves the GRU's cuDNN variants and gradients behind; the export drops them."""
    from tensorflow.core.protobuf import saved_model_pb2

    from models.function_library import reachable_functions

    pushed = Path(runs["first"]["summary"]["pushed_path"])
    saved_model = saved_model_pb2.SavedModel.FromString((pushed / "saved_model.pb").read_bytes())
    names = {function.signature.name for function in saved_model.meta_graphs[0].graph_def.library.function}
    assert names and reachable_functions(saved_model) == names
    assert not any("backward" in name or "gpu_gru" in name for name in names)


def test_unchanged_rerun_is_served_from_cache_and_pushes_nothing_new(runs):
    components = runs["rerun"]["summary"]["components"]
    for name in ("ImdbExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer", "Evaluator"):
        assert components[name]["cached"], name
    # The Evaluator's baseline leaves the candidate out: the same inputs as the first run (no
    # baseline), not the candidate compared with itself.
    assert runs["rerun"]["summary"]["baseline_metrics"] is None
    assert runs["rerun"]["versions"] == runs["first"]["versions"]
    # (that an identical blessed model is recognised as "already serving" is tests/test_pusher.py's)


def test_impossible_threshold_blocks_blessing_and_push(runs):
    summary = runs["impossible"]["summary"]
    assert summary["components"]["Trainer"]["cached"]
    assert summary["blessed"] is False and summary["pushed"] is False
    floor = [rule for rule in summary["blessing_rules"] if rule["kind"] == "floor" and rule["slice"] == "overall"]
    assert floor[0]["passed"] is False and floor[0]["bound"] == 1.0 and 0.5 <= floor[0]["value"] < 1.0
    assert floor[0]["sentence"] == f"accuracy {floor[0]['value']:.3f} is below the floor 1.000"
    assert floor[0]["sentence"] in summary["blessing_reasons"]
    ratchet = [rule for rule in summary["blessing_rules"] if rule["kind"] == "ratchet" and rule["metric"] == "accuracy"]
    assert ratchet and ratchet[0]["passed"] is True  # the same model as the one served: no drop
    assert "clears the bar" in ratchet[0]["sentence"] and "recorded when blessed" in ratchet[0]["sentence"]
    assert runs["impossible"]["versions"] == runs["first"]["versions"]
    assert "blessed: NO" in runs["impossible"]["stdout"]
    assert "FAIL accuracy" in runs["impossible"]["stdout"] and "value_threshold" not in runs["impossible"]["stdout"]


def test_bad_data_stops_before_training_naming_the_reason(tmp_path):
    data = write_aclimdb(tmp_path / "data", n_train=60, n_test=0)
    (data / "train" / "pos" / "999_2.txt").write_text("A rating of two in the positive folder.")
    proc = cli("run", "--data", str(data), "--workdir", str(tmp_path / "wd"),
               "--config", str(_write(tmp_path / "c.json", SMALL_SETTINGS)))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "stopped in ImdbExampleGen" in proc.stderr and "rating contradicts folder: 1" in proc.stderr
    assert "--max-rejected-fraction" in proc.stderr
    assert "no test/ folder" in proc.stdout  # said in so many words; the run would go on without it
    summary = json.loads((tmp_path / "wd" / "run_summary.json").read_text())
    assert summary["status"] == "failed" and "Trainer" not in summary["components"]
    assert not (tmp_path / "wd" / "serving").exists()


def add_mislabelled_eval_reviews(data: Path, count: int = 3) -> None:
    """Negative reviews filed under pos/ whose text hashes into the eval split: they never train
    the model, and the eval accuracy cannot reach 1.0."""
    import random

    from components.imdb_reader import output_split, text_digest
    from corpus import review_text
    from pipeline.configs import PipelineConfig

    eval_percent = PipelineConfig.__dataclass_fields__["eval_percent"].default
    rng, added, take = random.Random(7), 0, 0
    while added < count:  # written like the corpus's negative reviews, so the model calls them negative
        take += 1
        text = review_text(rng, positive=False)
        if output_split(text_digest(text), "train", eval_percent) == "eval":
            (data / "train" / "pos" / f"{9000 + take}_8.txt").write_text(text, encoding="utf-8")
            added += 1


def _write(path: Path, values: dict) -> Path:
    path.write_text(json.dumps(values))
    return path


def test_cli_errors_are_sentences(tmp_path):
    proc = cli("run", "--data", str(tmp_path / "missing"), "--workdir", str(tmp_path / "wd"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: The data path") and "Traceback" not in proc.stderr
    proc = cli("predict", "--serving-dir", str(tmp_path), "hello")
    assert proc.returncode == 2 and "No pushed model" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_learned_gru_embedding_exports_as_a_hub_module(runs, tmp_path):
    """The seed's reuse idea, backwards: the trained GRU's embedding becomes a Hub module whose
    vector for a known word is exactly that word's row of the trained table."""
    import tensorflow as tf
    import tensorflow_hub as hub

    out = tmp_path / "gru_module"
    proc = cli("hub", "export-gru", "--workdir", str(runs["workdir"]), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    model_dir = runs["first"]["summary"]["pushed_path"]
    vocabulary = (Path(model_dir) / "assets" / "vocabulary").read_text(encoding="utf-8").split("\n")
    loaded = tf.saved_model.load(model_dir)  # not a Keras object (exported without traces): walk its variables
    restored = tf.train.TrackableView(loaded).descendants()
    table = [v for v in restored if isinstance(v, tf.Variable) and v.name == "embedding/embeddings:0"][0].numpy()
    module = hub.KerasLayer(str(out))
    for word in ("great", "terrible"):
        row = vocabulary.index(word) + 1
        assert module(tf.constant([word])).numpy()[0] == pytest.approx(table[row].tolist(), abs=1e-6)


def test_run_writes_the_embedding_report(runs):
    report = runs["first"]["summary"]["embedding_report"]
    assert Path(report["png"]).stat().st_size > 10_000 and Path(report["html"]).exists()
    assert report["most_positive"] and report["most_negative"]
    assert "learned embedding" in runs["first"]["stdout"]


# --- Unattended safety: refreshes that must not reach serving -----------------------------------

def write_csv(path: Path, rows) -> Path:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def corpus_rows(data: Path):
    for folder, label in (("pos", 1), ("neg", 0)):
        for path in sorted((data / "train" / folder).iterdir()):
            yield path.read_text(encoding="utf-8"), label


@pytest.fixture(scope="session")
def refreshes(runs, tmp_path_factory):
    """After the good runs: a refresh with inverted labels, then one with a single label, on the
    same workdir (what a schedule would pick up); serving must stay as it was."""
    root = tmp_path_factory.mktemp("refresh")
    config = root / "small.json"
    config.write_text(json.dumps(SMALL_SETTINGS))
    inverted = write_csv(root / "inverted.csv", ((text, 1 - label) for text, label in corpus_rows(runs["data"])))
    one_label = write_aclimdb(root / "one", n_train=320, n_test=40)
    for path in (one_label / "train" / "neg").iterdir():
        path.unlink()
    results = {}
    for name, data in (("inverted", inverted), ("one_label", one_label)):
        proc = cli("run", "--data", str(data), "--workdir", str(runs["workdir"]), "--config", str(config))
        summary = json.loads((runs["workdir"] / "run_summary.json").read_text())
        results[name] = {"proc": proc, "summary": summary, "versions": versions(runs["workdir"] / "serving")}
    return results


def test_a_refresh_with_inverted_labels_never_reaches_serving(runs, refreshes):
    proc, summary = refreshes["inverted"]["proc"], refreshes["inverted"]["summary"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert summary["pushed"] is False and refreshes["inverted"]["versions"] == runs["first"]["versions"]
    # The refresh agrees with its own eval split; what it cannot fool is a clear review scored in a
    # fresh process (or the bar the served model set): the reason is stated either way.
    assert summary["blessing_reasons"], summary
    if summary["blessed"]:
        assert summary["canary"]["passed"] is False and "expected positive" in summary["canary"]["verdict"]
        assert "serving canaries: FAILED" in proc.stdout


def test_a_one_label_refresh_stops_before_training_naming_the_split(runs, refreshes):
    proc, summary = refreshes["one_label"]["proc"], refreshes["one_label"]["summary"]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "only 0.0% of the train split's" in proc.stderr and "are negative" in proc.stderr
    assert "--min-label-fraction" in proc.stderr
    assert summary["status"] == "failed" and summary["failed_component"] == "DataValidationGate"
    assert "Trainer" not in summary["components"]
    assert refreshes["one_label"]["versions"] == runs["first"]["versions"]
