"""The Pusher executor on real SavedModels in tmp folders: stage then publish, a marker last,
monotonic versions, bounded history, no duplicate pushes, and no partial version after a kill."""
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components import pusher
from components import serving_dir as sd
from models.errors import UserError
from test_serving_dir import plant, tiny_models  # noqa: F401  (the shared module-scoped fixture)

T = 1_700_000_000
_runs = itertools.count()


def run_push(model, serving, work, keep=5, blessed=1, custom_config="default"):
    """One Pusher execution as TFX makes it: Model, ModelBlessing and PushedModel artifacts with
    their URIs, push_destination and custom_config as the JSON strings TFX stores."""
    import shutil

    from tfx.proto import pusher_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import json_utils, path_utils, proto_utils

    work = Path(work) / f"run{next(_runs)}"
    model_artifact = standard_artifacts.Model()
    model_artifact.uri = str(work / "model")
    shutil.copytree(model, path_utils.serving_model_dir(model_artifact.uri))
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(work / "blessing")
    blessing.set_int_custom_property("blessed", blessed)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(work / "pushed")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving)))
    properties = {"push_destination": proto_utils.proto_to_json(destination),
                  "custom_config": json_utils.dumps({"keep_versions": keep} if custom_config == "default"
                                                    else custom_config)}
    pusher.Executor().Do({"model": [model_artifact], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
                         properties)
    return pushed


def clock(monkeypatch, at):
    monkeypatch.setattr(pusher, "now", lambda: at)


def score(model_dir):
    import tensorflow as tf

    serve = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    return round(float(serve(text=tf.constant(["a review"]))["probability"].numpy()[0]), 3)


def props(artifact):
    return {name: artifact.get_custom_property(name) for name in
            ("pushed", "pushed_version", "pushed_destination", "already_serving") if artifact.has_custom_property(name)}


def test_first_push_stages_publishes_then_writes_the_marker(tmp_path, tiny_models, monkeypatch):
    serving = tmp_path / "serving"
    clock(monkeypatch, T + 0.7)
    model = tiny_models(0.3)
    pushed = run_push(model, serving, tmp_path)
    assert props(pushed) == {"pushed": 1, "pushed_version": str(T), "pushed_destination": str(serving / str(T))}
    assert sorted(os.listdir(serving)) == [str(T)]  # no staging folder left behind
    marker = json.loads((serving / str(T) / sd.MARKER_RELPATH).read_text())
    assert marker["version"] == str(T) and marker["source_uri"].endswith("Format-Serving")
    assert marker["model_digest"] == pusher.model_digest(str(model)) == pusher.model_digest(str(serving / str(T)))
    assert not (serving / str(T) / sd.IN_PROGRESS_RELPATH).exists()
    assert score(serving / str(T)) == 0.3
    assert (Path(pushed.uri) / "saved_model.pb").is_file()  # TFX's archive copy


def test_an_identical_model_is_not_pushed_again(tmp_path, tiny_models, monkeypatch):
    serving = tmp_path / "serving"
    clock(monkeypatch, T)
    run_push(tiny_models(0.3), serving, tmp_path)
    clock(monkeypatch, T + 3600)
    again = run_push(tiny_models(0.3), serving, tmp_path)
    assert props(again) == {"pushed": 1, "pushed_version": str(T), "pushed_destination": str(serving / str(T)),
                            "already_serving": 1}
    assert os.listdir(serving) == [str(T)]


def test_pushes_in_the_same_second_get_distinct_increasing_versions(tmp_path, tiny_models, monkeypatch):
    serving = tmp_path / "serving"
    clock(monkeypatch, T + 0.1)
    versions = [run_push(tiny_models(p), serving, tmp_path).get_string_custom_property("pushed_version")
                for p in (0.1, 0.2, 0.3)]
    assert versions == [str(T), str(T + 1), str(T + 2)]
    assert sd.complete_versions(str(serving)) == versions[::-1]
    assert [score(serving / v) for v in versions] == [0.1, 0.2, 0.3]


def test_a_clock_behind_the_newest_version_never_lowers_or_reuses_a_number(tmp_path, tiny_models, monkeypatch):
    serving = tmp_path / "serving"
    clock(monkeypatch, T + 1000)
    run_push(tiny_models(0.1), serving, tmp_path)
    clock(monkeypatch, T)  # the clock went back 1000 s
    assert run_push(tiny_models(0.2), serving, tmp_path).get_string_custom_property("pushed_version") == str(T + 1001)
    plant(serving, T + 5000, tiny_models(0.4), marker=False, empty_graph=True)  # a broken folder's number is taken too
    assert run_push(tiny_models(0.3), serving, tmp_path).get_string_custom_property("pushed_version") == str(T + 5001)


def test_retention_keeps_the_newest_n_complete_versions(tmp_path, tiny_models, monkeypatch):
    serving = tmp_path / "serving"
    plant(serving, 1000, tiny_models(0.9), marker=False, empty_graph=True)  # damaged, older than all kept
    for i, p in enumerate((0.1, 0.2, 0.3, 0.4)):
        clock(monkeypatch, T + i)
        run_push(tiny_models(p), serving, tmp_path, keep=2)
    assert sorted(os.listdir(serving)) == [str(T + 2), str(T + 3)]
    clock(monkeypatch, T + 10)
    assert run_push(tiny_models(0.4), serving, tmp_path, keep=1).get_int_custom_property("already_serving") == 1
    assert os.listdir(serving) == [str(T + 3)]  # keep=1 keeps the one being served


def test_retention_never_removes_the_newest_complete_version(tmp_path, tiny_models):
    for version in (100, 200):
        plant(tmp_path, version, tiny_models(0.1))
    plant(tmp_path, 300, tiny_models(0.1), marker=False, empty_graph=True)  # newer, but not complete
    assert pusher.prune(str(tmp_path), keep=1) == ["100"]
    assert sorted(os.listdir(tmp_path)) == ["200", "300"]


def test_keep_versions_is_required_and_at_least_one(tmp_path, tiny_models):
    with pytest.raises(ValueError, match="keep_versions"):
        run_push(tiny_models(0.1), tmp_path / "serving", tmp_path, custom_config=None)
    with pytest.raises(ValueError, match="keep_versions"):
        run_push(tiny_models(0.1), tmp_path / "serving", tmp_path, custom_config={"keep": 3})
    with pytest.raises(UserError, match="at least 1"):
        run_push(tiny_models(0.1), tmp_path / "serving", tmp_path, keep=0)
    with pytest.raises(ValueError, match="keep_versions"):  # and when the pipeline is built
        pusher.IdempotentPusher(model=None, model_blessing=None)
    assert not (tmp_path / "serving").exists()


def test_an_unblessed_model_is_not_pushed(tmp_path, tiny_models):
    pushed = run_push(tiny_models(0.1), tmp_path / "serving", tmp_path, blessed=0)
    assert props(pushed) == {"pushed": 0}
    assert sd.numeric_versions(str(tmp_path / "serving")) == []


def test_a_broken_newest_version_is_never_already_serving(tmp_path, tiny_models, monkeypatch):
    serving = tmp_path / "serving"
    clock(monkeypatch, T)
    run_push(tiny_models(0.1), serving, tmp_path)
    clock(monkeypatch, T + 1)
    run_push(tiny_models(0.2), serving, tmp_path)
    (serving / str(T + 1) / "saved_model.pb").write_bytes(b"")  # the incident: 0 bytes in the newest version
    clock(monkeypatch, T + 2)
    again = run_push(tiny_models(0.2), serving, tmp_path)
    assert props(again)["pushed_version"] == str(T + 2) and not again.has_custom_property("already_serving")
    assert score(serving / str(T + 2)) == 0.2
    # A highest folder without a marker (say a half-renamed push on gs://) is not "served" either.
    plant(serving, T + 3, tiny_models(0.2), marker=False)
    (serving / str(T + 3) / sd.EXTRA_DIR).mkdir()
    (serving / str(T + 3) / sd.IN_PROGRESS_RELPATH).write_text("")
    assert run_push(tiny_models(0.2), serving, tmp_path).get_string_custom_property("pushed_version") == str(T + 4)


def test_an_identical_but_unloadable_highest_version_is_pushed_again(tmp_path, tiny_models, monkeypatch, caplog):
    import shutil

    broken = tmp_path / "broken_model"
    shutil.copytree(tiny_models(0.1), broken)
    (broken / "saved_model.pb").write_bytes(b"not a graph")
    clock(monkeypatch, T)
    run_push(broken, tmp_path / "serving", tmp_path)
    clock(monkeypatch, T + 1)
    with caplog.at_level("WARNING", logger="imdb.pusher"):
        again = run_push(broken, tmp_path / "serving", tmp_path)
    assert props(again)["pushed_version"] == str(T + 1) and not again.has_custom_property("already_serving")
    assert any(f"version {T}" in m and "does not load" in m for m in caplog.messages)


def test_a_crash_after_publishing_before_the_marker_leaves_nothing_readers_accept(tmp_path, tiny_models,
                                                                                  monkeypatch):
    serving = tmp_path / "serving"
    clock(monkeypatch, T)
    run_push(tiny_models(0.1), serving, tmp_path)

    def crash(*_):
        raise RuntimeError("killed before the marker")
    monkeypatch.setattr(sd, "write_marker", crash)
    clock(monkeypatch, T + 1)
    with pytest.raises(RuntimeError):
        run_push(tiny_models(0.2), serving, tmp_path)
    assert sd.numeric_versions(str(serving)) == [str(T + 1), str(T)]  # published, no marker
    assert sd.complete_versions(str(serving)) == [str(T)]
    monkeypatch.undo()
    clock(monkeypatch, T + 2)
    assert run_push(tiny_models(0.2), serving, tmp_path).get_string_custom_property("pushed_version") == str(T + 2)


def test_a_store_that_cannot_rename_folders_gets_the_in_progress_file_first_and_the_graph_last(
        tmp_path, tiny_models, monkeypatch):
    """gs:// and s3:// have no folder rename: the fallback copy must leave, at every instant, a
    folder that readers reject (the in-progress file lands before saved_model.pb, the marker after)."""
    import shutil

    staging, final = tmp_path / ".staging-5-5-ab", tmp_path / "5"
    shutil.copytree(tiny_models(0.1), staging)
    (staging / sd.EXTRA_DIR).mkdir()
    (staging / sd.IN_PROGRESS_RELPATH).write_text("")
    order = []
    real_copy = pusher.copy_file

    def recording_copy(source, target):
        order.append(os.path.relpath(target, final))
        real_copy(source, target)

    def no_folder_rename(*_, **__):
        raise OSError("folders cannot be renamed on this store")
    monkeypatch.setattr(pusher, "copy_file", recording_copy)
    monkeypatch.setattr(pusher.fileio, "rename", no_folder_rename)
    with pytest.raises(OSError):
        pusher._publish(str(staging), str(final), remote=False)  # a local disk renames, or fails loudly
    pusher._publish(str(staging), str(final), remote=True)
    assert order[0] == sd.IN_PROGRESS_RELPATH and order[-1] == "saved_model.pb" and len(order) > 3
    assert not staging.exists() and not sd.is_complete(str(final))  # complete only once the marker is written
    assert sd.load_error(str(final)) is None


# The push runs in its own interpreter, which SIGKILLs itself after the second file of the copy.
# tfx/components/__init__.py imports every TFX component (~10 s); the package is registered
# without running it, so only the Pusher's own modules load (the executor under test is unchanged).
KILL_AFTER_TWO_FILES = """
import os, signal, sys, types
from pathlib import Path
sys.path[:0] = [{root!r}, {tests!r}]
import tfx
package = types.ModuleType("tfx.components")
package.__path__ = [os.path.join(os.path.dirname(tfx.__file__), "components")]
sys.modules["tfx.components"] = package
from components import pusher
copied = []
real_copy = pusher.copy_file
def copy_then_die(source, target):
    real_copy(source, target)
    copied.append(target)
    if len(copied) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
pusher.copy_file = copy_then_die
from test_pusher import run_push
run_push(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
"""


def test_a_pusher_killed_mid_copy_leaves_no_visible_partial_version(tmp_path, tiny_models, monkeypatch):
    serving = tmp_path / "serving"
    clock(monkeypatch, T)
    run_push(tiny_models(0.1), serving, tmp_path)
    before = sd.numeric_versions(str(serving))
    tests = Path(__file__).resolve().parent
    script = KILL_AFTER_TWO_FILES.format(root=str(tests.parent), tests=str(tests))
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-c", script, str(tiny_models(0.2)), str(serving), str(tmp_path / "killed")],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert sd.numeric_versions(str(serving)) == before  # no numeric folder, complete or not
    assert sd.newest_complete_version(str(serving)) == str(T)
    [staging] = sd.staging_folders(str(serving))  # the kill did come mid-copy
    copied = [f for _, _, files in os.walk(serving / staging) for f in files if f != "push_in_progress"]
    assert len(copied) == 2 < sum(len(files) for _, _, files in os.walk(tiny_models(0.2)))
    assert score(serving / str(T)) == 0.1

    clock(monkeypatch, time.time() + pusher.STALE_STAGING_SECONDS)  # the next scheduled run, later on
    after = run_push(tiny_models(0.2), serving, tmp_path)
    assert after.get_int_custom_property("pushed") == 1
    assert sd.staging_folders(str(serving)) == []
    assert score(serving / after.get_string_custom_property("pushed_version")) == 0.2
