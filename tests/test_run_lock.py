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


# -- SIGTERM (what Kubernetes sends before it kills a pod) behaves like Ctrl-C ----------------------------------
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_cli(*argv):
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *argv], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigterm_while_waiting_for_the_workdir_is_one_line_and_exit_143(tmp_path):
    data = write_aclimdb(tmp_path / "data", n_train=4, n_test=0)
    holder = hold_lock(tmp_path / "wd", 60)
    try:
        run = start_cli("run", "--wait", "--data", str(data), "--workdir", str(tmp_path / "wd"))
        assert run.stderr.readline().startswith(f"waiting for the run using the workdir {tmp_path / 'wd'} to "
                                                f"finish: process {holder.pid}")
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode == 143 and out == ""
    assert err == ("terminated (SIGTERM); the next run on this workdir resumes from the components that "
                   "finished\n")


def test_sigterm_while_holding_the_workdir_releases_it(tmp_path):
    data = write_aclimdb(tmp_path / "data", n_train=4, n_test=0)
    workdir = tmp_path / "wd"
    holder = hold_lock(workdir, 60)
    run = start_cli("run", "--wait", "--data", str(data), "--workdir", str(workdir))
    try:
        assert run.stderr.readline().startswith("waiting for the run")
        holder.kill()
        holder.wait()
        deadline = time.monotonic() + 30
        while f'"pid": {run.pid}' not in (workdir / ".run.lock").read_text():  # the run holds the lock now
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.01)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 143, err
    assert err.endswith("terminated (SIGTERM); the next run on this workdir resumes from the components that "
                        "finished\n") and err.count("\n") == 1 and "Traceback" not in err
    with workdir_lock(str(workdir)):  # released: taken at once, no --wait needed
        pass
    logs = list((workdir / "logs").glob("run-*.log"))
    assert all("terminated by signal 15" in log.read_text() for log in logs)


def test_the_sigterm_handler_raises_a_keyboard_interrupt_in_the_main_thread_and_is_removed_after():
    from models.errors import Terminated

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught:
        with cli._sigterm_as_interrupt():  # pylint: disable=protected-access
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert isinstance(caught.value, KeyboardInterrupt) and caught.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
