"""One run per workdir: a second run refuses (naming the holder) or waits; the lock dies with
its process, and a summary left at `running` by a killed run is reported as such."""
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from models.errors import UserError
from pipeline import cli
from pipeline.local_runner import _previous_run_died
from pipeline.run_lock import workdir_lock
from corpus import write_aclimdb

HOLD = ("import sys, time; from pipeline.run_lock import workdir_lock\n"
        "with workdir_lock(sys.argv[1]):\n"
        "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n")


def hold_lock(workdir, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(workdir), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_the_workdir_refuses_naming_the_holder(tmp_path, capsys):
    data = write_aclimdb(tmp_path / "data", n_train=4, n_test=0)
    holder = hold_lock(tmp_path / "wd", 60)
    try:
        code = cli.main(["run", "--data", str(data), "--workdir", str(tmp_path / "wd")])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == 2 and f"process {holder.pid}" in err and "--wait" in err and err.count("\n") == 1
    assert not (tmp_path / "wd" / "run_summary.json").exists()  # the refused run touched nothing


def test_the_lock_dies_with_a_killed_holder(tmp_path):
    holder = hold_lock(tmp_path, 60)
    with pytest.raises(UserError, match="Another run is using"):
        with workdir_lock(str(tmp_path)):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with workdir_lock(str(tmp_path)):  # no stale lock left behind
        pass


def test_wait_queues_behind_the_holder(tmp_path):
    holder = hold_lock(tmp_path, 1.5)
    started = time.monotonic()
    with workdir_lock(str(tmp_path), wait=True):
        waited = time.monotonic() - started
    holder.wait()
    assert waited >= 0.5 and holder.returncode == 0


def test_a_summary_left_running_is_reported_as_a_killed_run(tmp_path, caplog):
    path = tmp_path / "run_summary.json"
    path.write_text(json.dumps({"status": "running", "pid": 4242, "started_at": "2026-11-26T10:00:00Z",
                                "log": "/wd/logs/run-1.log"}))
    with caplog.at_level(logging.WARNING, logger="imdb.runner"):
        died = _previous_run_died(str(path))
    assert died == {"pid": 4242, "started_at": "2026-11-26T10:00:00Z", "log": "/wd/logs/run-1.log"}
    assert "did not finish" in caplog.text and "4242" in caplog.text
    path.write_text(json.dumps({"status": "succeeded"}))
    assert _previous_run_died(str(path)) is None
    path.write_text('{"status": "runn')  # half a file from before summaries were written atomically
    assert _previous_run_died(str(path)) is None
    os.remove(path)
    assert _previous_run_died(str(path)) is None
