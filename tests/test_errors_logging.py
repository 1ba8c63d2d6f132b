"""An unforeseen failure leaves its full traceback in the log file, and the terminal gets one
sentence: no library's duplicate `Execution N failed.` line, no traceback."""
import json
import logging

from absl import logging as absl_logging
from tfx import v1 as tfx  # here, not in a test: TensorFlow's native lines at import are no test's stderr

from corpus import write_aclimdb
from pipeline import cli
from pipeline.console import LOG_ONLY, console_and_log, failure_log


def _executor():
    raise ValueError("shapes (3,) and (4,) not aligned")


def _launch(execution_id):
    """What TFX's launcher does when an executor raises: absl's ERROR line, then re-raise."""
    try:
        _executor()
    except Exception:
        absl_logging.error("Execution %d failed.", execution_id)
        raise


def test_an_exception_leaving_the_console_block_is_logged_with_its_traceback_and_not_shown(tmp_path, capfd):
    log_path = tmp_path / "logs" / "run.log"
    try:
        with console_and_log(str(log_path)):
            logging.getLogger("imdb.runner").info("[12:00:00] Trainer started")
            logging.getLogger("imdb.runner").error("for the file only", extra=LOG_ONLY)
            _launch(26)
    except ValueError as error:
        assert failure_log(error) == str(log_path)
    out, err = capfd.readouterr()
    assert out.splitlines() == ["[12:00:00] Trainer started"] and err == ""  # no "error: absl: Execution 26 failed."
    logged = log_path.read_text()
    assert "ERROR absl: Execution 26 failed." in logged and "for the file only" in logged
    assert "ERROR imdb: failed with ValueError" in logged and "Traceback (most recent call last)" in logged
    assert "in _executor" in logged and "ValueError: shapes (3,) and (4,) not aligned" in logged


def test_a_component_that_raises_is_one_sentence_exit_1_and_its_traceback_is_in_the_run_log(
        tmp_path, monkeypatch, capfd):
    """The runner's own path, with LocalDagRunner replaced by one whose Trainer raises as a real
    executor would (TFX's launcher lines included); no pipeline runs."""
    class FailingRunner:
        def run(self, _pipeline):
            absl = logging.getLogger("absl")
            absl.info("Component %s is running.", "Trainer")
            absl.info("Going to run a new execution %d", 26)
            _launch(26)

    monkeypatch.setattr("pipeline.pipeline.create_pipeline", lambda *args, **kwargs: None)
    monkeypatch.setattr(tfx.orchestration, "LocalDagRunner", FailingRunner)
    data = write_aclimdb(tmp_path / "d", n_train=4, n_test=0)
    workdir = tmp_path / "w"
    assert cli.main(["run", "--data", str(data), "--workdir", str(workdir)]) == 1
    out, err = capfd.readouterr()
    (log,) = (workdir / "logs").glob("run-*.log")
    assert err == (f"error: The pipeline failed in Trainer with ValueError: shapes (3,) and (4,) not aligned; "
                   f"the full traceback is in {log} (fix what it names, or report it with that file).\n")
    assert "Trainer started" in out and "Execution 26 failed" not in out + err
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged and "in _executor" in logged
    assert "ValueError: shapes (3,) and (4,) not aligned" in logged and "InternalError" in logged
    summary = json.loads((workdir / "run_summary.json").read_text())
    assert summary["status"] == "failed" and summary["failed_component"] == "Trainer"
