"""End to end: a workdir that sees two crashes (a run killed in Transform while a second run is
refused, one killed in the Trainer) and the run that recovers; each run is a subprocess of the
installed `imdb-pipeline`. Its own file, so pytest-xdist's `--dist loadfile` runs it beside
tests/test_e2e.py's shared workdir instead of after it."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import SMALL_SETTINGS
from corpus import write_aclimdb
from test_e2e import CLI, cli

pytestmark = pytest.mark.e2e

def start_run(data: Path, workdir: Path, config: Path):
    return subprocess.Popen([CLI, "run", "--data", str(data), "--workdir", str(workdir), "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_line(proc, fragment: str, timeout: float = 600) -> str:
    """Reads the run's stdout until a line contains `fragment` (the run must not end before)."""
    import time

    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the run ended before {fragment!r}:\n{''.join(seen)}{proc.stderr.read()}")
        seen.append(line)
        if fragment in line:
            return "".join(seen)
    raise AssertionError(f"no {fragment!r} within {timeout}s")


def kill_run(proc) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGKILL)  # the whole run: the CLI and anything it started
    proc.wait(timeout=60)


@pytest.fixture(scope="session")
def crashes(tmp_path_factory):
    """A run SIGKILLed in Transform (while a second run on its workdir is refused), another killed
    in the Trainer, then a run that finishes: what a laptop that died twice would see."""
    root = tmp_path_factory.mktemp("crash")
    data = write_aclimdb(root / "data", n_train=320, n_test=40, seed=3)
    config = root / "small.json"
    config.write_text(json.dumps({**SMALL_SETTINGS, "serving_xla": True}))  # and the XLA export on the way
    workdir = root / "workdir"
    first = start_run(data, workdir, config)
    wait_for_line(first, "Transform started")
    second = cli("run", "--data", str(data), "--workdir", str(workdir), "--config", str(config), timeout=120)
    kill_run(first)
    killed_summary = json.loads((workdir / "run_summary.json").read_text())
    third = start_run(data, workdir, config)
    wait_for_line(third, "Trainer started")
    wait_for_line(third, "epoch")  # killed mid-training
    kill_run(third)
    last = cli("run", "--data", str(data), "--workdir", str(workdir), "--config", str(config))
    return {"first": first, "second": second, "killed_summary": killed_summary, "third": third, "last": last,
            "summary": json.loads((workdir / "run_summary.json").read_text()), "workdir": workdir}


def test_a_second_run_on_a_busy_workdir_is_refused_in_one_sentence(crashes):
    second = crashes["second"]
    assert second.returncode == 2 and second.stderr.count("\n") == 1
    assert f"Another run is using the workdir {crashes['workdir']}: process {crashes['first'].pid}" in second.stderr


def test_a_killed_run_leaves_an_honest_summary_and_the_next_run_resumes(crashes):
    assert crashes["killed_summary"]["status"] == "running" and crashes["killed_summary"]["pid"] == crashes["first"].pid
    last, summary = crashes["last"], crashes["summary"]
    assert last.returncode == 0, last.stdout[-3000:] + last.stderr[-3000:]
    assert summary["status"] == "succeeded" and summary["pushed"] is True
    assert summary["previous_run_died"]["pid"] == crashes["third"].pid
    assert "did not finish: it was killed or crashed" in last.stdout
    components = summary["components"]
    for name in ("ImdbExampleGen", "StatisticsGen", "Transform"):  # finished before a kill: reused
        assert components[name]["cached"], name
    assert not components["Trainer"]["cached"]                      # killed mid-way: run again


def test_after_the_crashes_serving_holds_only_complete_versions(crashes):
    serving = crashes["workdir"] / "serving"
    names = sorted(os.listdir(serving))
    assert names and all(name.isdigit() for name in names)  # no staging or partial folder
    for name in names:
        assert (serving / name / "assets.extra" / "push_complete.json").is_file()
        assert (serving / name / "saved_model.pb").stat().st_size > 0


def test_the_xla_export_carries_warmup_requests_and_scores_like_the_plain_signature(crashes):
    """The crash scenario's runs export with serving_xla: the pushed model's raw-text signature
    is XLA-compiled, ships TF Serving warmup requests the canary replays, and agrees with the
    uncompiled examples signature on the same reviews."""
    import tensorflow as tf

    pushed = Path(crashes["summary"]["pushed_path"])
    assert b"_XlaMustCompile" in (pushed / "saved_model.pb").read_bytes()
    warmup = list(tf.data.TFRecordDataset(str(pushed / "assets.extra" / "tf_serving_warmup_requests")))
    assert len(warmup) == 3  # rows 1, 8 and 32 x one length step (max_tokens 40 pads to 64)
    assert crashes["summary"]["canary"]["passed"] and crashes["summary"]["canary"]["warmup_requests"] == 3
    assert "after 3 warmup requests" in crashes["last"].stdout
    texts = [b"", b"a great film", b"an awful and boring film " * 30] + [b"fine acting, dull plot"] * 9
    loaded = tf.saved_model.load(str(pushed))
    compiled = loaded.signatures["serving_default"](text=tf.constant(texts))["probability"].numpy()
    examples = [tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text]))})).SerializeToString() for text in texts]
    plain = loaded.signatures["serving_examples"](examples=tf.constant(examples))["probability"].numpy()
    assert compiled.tolist() == pytest.approx(plain.tolist(), rel=1e-4, abs=1e-6)
