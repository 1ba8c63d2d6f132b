"""Runs the pipeline on this machine: LocalDagRunner, Beam DirectRunner, ML Metadata in SQLite.

Adds what a person running it needs: a line as each component starts and ends (with time and
whether the cache served it), the full log in `<workdir>/logs/` (pipeline/console.py), a failure
named by component in one sentence, and the run summary printed and written to
`<workdir>/run_summary.json`, with an HTML report beside it (`report.html`).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from typing import Any, Dict, Optional, TextIO

import psutil

from models.errors import InternalError, UserError
from pipeline.configs import PipelineConfig
from pipeline.console import RUNNER_LOGGER, console_and_log
from pipeline.run_lock import check_file, check_folder, workdir_lock
from pipeline.run_report import write_report
from pipeline.targets import LOCAL

LOG_DIR = "logs"
REPORT_FILE = "report.html"

log = logging.getLogger(RUNNER_LOGGER)


class MemorySampler(threading.Thread):
    """Resident memory of this process and its children (Beam's workers), sampled a few times a
    second: LocalDagRunner runs every component in this process, so the process's own peak says
    nothing about which component needed it."""

    INTERVAL = 0.25

    def __init__(self):
        super().__init__(name="memory-sampler", daemon=True)
        self.peak_mib = 0.0
        self._stop_event = threading.Event()
        self._lock = threading.Lock()  # a sample taken before a reset must not land after it

    def reset(self) -> float:
        """The peak since the last reset, and starts a new one."""
        current = self._current_mib()
        with self._lock:
            peak, self.peak_mib = self.peak_mib, current
        return max(peak, current)

    @staticmethod
    def _current_mib() -> float:
        process = psutil.Process()
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total / 2**20

    def run(self) -> None:
        while not self._stop_event.wait(self.INTERVAL):
            with contextlib.suppress(psutil.Error), self._lock:
                self.peak_mib = max(self.peak_mib, self._current_mib())

    def stop(self) -> None:
        self._stop_event.set()


class ComponentProgress(logging.Handler):
    """Listens to TFX's launcher log records and reports one line per component start/end, with
    its time and its peak resident memory."""

    def __init__(self, memory: Optional[MemorySampler] = None):
        super().__init__(level=logging.INFO)
        self.executions: Dict[str, Dict[str, Any]] = {}
        self.current: Optional[str] = None
        self._started = 0.0
        self._memory = memory

    def emit(self, record: logging.LogRecord) -> None:
        message, args = record.msg, record.args or ()
        if message == "Component %s is running.":
            self.current, self._started = str(args[0]), time.time()
            self.executions[self.current] = {"execution_id": None, "cached": False, "seconds": None}
            if self._memory:
                self._memory.reset()
            log.info("[%s] %s started", time.strftime("%H:%M:%S"), self.current)
        elif self.current and message == "Going to run a new execution %d":
            self.executions[self.current]["execution_id"] = int(args[0])
        elif self.current and message == "A cached execution %d is used.":
            self.executions[self.current].update(execution_id=int(args[0]), cached=True)
        elif message == "Component %s is finished." and str(args[0]) in self.executions:
            info = self.executions[str(args[0])]
            info["seconds"] = round(time.time() - self._started, 1)
            if self._memory:
                info["peak_rss_mib"] = round(self._memory.reset())
            how = "from cache" if info["cached"] else f"{info['seconds']:.0f}s" + (
                f", peak memory {info['peak_rss_mib'] / 1024:.1f} GiB" if "peak_rss_mib" in info else "")
            log.info("[%s] %s finished (%s)", time.strftime("%H:%M:%S"), args[0], how)
            self.current = None


def input_fingerprint(data_root: str) -> str:
    """Cheap digest of local input files (relative names, sizes, mtimes): changed data, new run."""
    if "://" in data_root or not os.path.exists(data_root):
        return ""
    digest = hashlib.sha256()
    if os.path.isfile(data_root):
        stat = os.stat(data_root)
        digest.update(f"{os.path.basename(data_root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]
    for root, dirs, files in os.walk(data_root):
        dirs[:] = sorted(d for d in dirs if d != "unsup")
        for name in sorted(files):
            stat = os.lstat(os.path.join(root, name))  # a dangling link is data ExampleGen reports, not a crash
            digest.update(f"{os.path.relpath(os.path.join(root, name), data_root)}:{stat.st_size}:"
                          f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def check_storage(config: PipelineConfig) -> None:
    """Pre-flight of every location the run reads or writes: scheme, S3 endpoint, keys, bucket,
    each in one sentence naming the flag, before any component starts (models/storage.py)."""
    from models import storage  # pylint: disable=import-outside-toplevel

    if storage.is_s3(config.resolved_pipeline_root):
        raise UserError(
            f"--pipeline-root {config.pipeline_root}: a local run cannot keep its artifacts on S3, because "
            "tensorflow-io 0.37.1 (TensorFlow 2.16's S3 filesystem) crashes when Transform and the Evaluator "
            "load SavedModels from S3 in place; keep --pipeline-root on this machine (the default) or on gs://, "
            "and put --data, --serving-dir, the vectors and Hub modules on S3. On Kubeflow an s3:// or minio:// "
            "pipeline root works: the launcher moves the artifacts (kubeflow/README.md).")
    if "://" in config.resolved_metadata_path:
        raise UserError(f"--metadata-path {config.metadata_path}: ML Metadata is a SQLite file and must be "
                        "on this machine; keep the artifacts on object storage with --pipeline-root.")
    storage.preflight({"--data": config.data_root, "--pipeline-root": config.resolved_pipeline_root,
                       "--serving-dir": config.resolved_serving_dir,
                       "--pretrained-embeddings": config.pretrained_embeddings,
                       "--hub-handle": (config.hub_handle if storage.scheme_of(config.hub_handle or "")
                                      not in ("http", "https") else None)},
                      must_exist=("--data", "--pretrained-embeddings"))


def check_local_places(config: PipelineConfig) -> None:
    """Each local location is what it must be, before the lock or any component: the workdir, the
    serving folder, the artifacts' root and the metadata file's folder are folders that exist or can
    be created (not a regular file); the vectors file a readable file; a local Hub module a folder.
    URIs are left to check_storage."""
    check_folder(config.workdir, "--workdir")
    check_folder(config.resolved_serving_dir, "--serving-dir")
    check_folder(config.resolved_pipeline_root, "--pipeline-root")
    metadata = config.resolved_metadata_path
    if "://" not in metadata:
        if os.path.isdir(metadata):
            raise UserError(f"--metadata-path {metadata} is a folder; it must name a SQLite file (created if "
                            "missing).")
        check_folder(os.path.dirname(os.path.abspath(metadata)), "--metadata-path's folder")
    if config.pretrained_embeddings:
        check_file(config.pretrained_embeddings, "--pretrained-embeddings")
    if config.hub_handle and "://" not in config.hub_handle and os.path.exists(config.hub_handle) \
            and not os.path.isdir(config.hub_handle):
        raise UserError(f"--hub-handle {config.hub_handle} is a file; it must name a TF Hub module folder "
                        "(imdb-pipeline hub build makes one) or a TF Hub URL.")


def _root_cause(error: BaseException) -> BaseException:
    seen = error
    while True:
        if isinstance(seen, UserError):
            return seen
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            return error
        seen = nxt


def run_local(config: PipelineConfig, out: Optional[TextIO] = None, verbose: bool = False,
              wait: bool = False) -> Dict[str, Any]:
    """Runs the whole pipeline; returns the run summary (also written to the workdir with an
    HTML report). `out` gets the console lines (default stdout); the run log gets everything.
    One run per workdir: another one refuses (or, with `wait`, queues)."""
    log_path = os.path.join(config.workdir, LOG_DIR, time.strftime("run-%Y%m%d-%H%M%S.log"))
    check_local_places(config)
    with workdir_lock(config.workdir, wait=wait):
        with console_and_log(log_path, verbose=verbose, out=out):  # before TensorFlow loads: it is noisy
            return _run(config, log_path)


def _previous_run_died(summary_path: str) -> Optional[Dict[str, Any]]:
    """A summary still saying `running` while we hold the workdir lock: that run was killed."""
    from pipeline import run_summary  # pylint: disable=import-outside-toplevel

    previous = run_summary.read_summary(summary_path)
    if not previous or previous.get("status") != "running":
        return None
    log.warning("the previous run (pid %s, started %s) did not finish: it was killed or crashed; "
                "its log: %s", previous.get("pid"), previous.get("started_at"), previous.get("log"))
    return {key: previous.get(key) for key in ("pid", "started_at", "log")}


def _run(config: PipelineConfig, log_path: str) -> Dict[str, Any]:
    check_storage(config)  # before TensorFlow loads: a wrong endpoint or bucket is told in seconds
    # Imported here, after the console is set up: each of these loads TensorFlow.
    from components.imdb_reader import detect_layout  # pylint: disable=import-outside-toplevel
    from ml_metadata.metadata_store import metadata_store  # pylint: disable=import-outside-toplevel
    from tfx import v1 as tfx  # pylint: disable=import-outside-toplevel

    from pipeline import run_summary  # pylint: disable=import-outside-toplevel
    from pipeline.pipeline import create_pipeline  # pylint: disable=import-outside-toplevel

    detect_layout(config.data_root)  # a clear error now rather than inside ExampleGen later
    if not config.input_fingerprint:
        config = config.replace(input_fingerprint=input_fingerprint(config.data_root))
    os.makedirs(os.path.dirname(os.path.abspath(config.resolved_metadata_path)), exist_ok=True)

    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.resolved_metadata_path)
    pipeline = create_pipeline(config, metadata_connection_config=connection, target=LOCAL)
    memory = MemorySampler()
    memory.start()
    progress = ComponentProgress(memory)
    absl_logger = logging.getLogger("absl")
    absl_logger.addHandler(progress)
    started = time.time()
    paths = {"log": log_path, "summary_path": os.path.join(config.workdir, run_summary.SUMMARY_FILE),
             "report_path": os.path.join(config.workdir, REPORT_FILE)}
    base = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "model_family": config.model, "config": config.to_dict(), **paths}
    log.info("Running pipeline '%s' (%s model) on %s; full log: %s", config.pipeline_name, config.model,
             config.data_root, log_path)
    died = _previous_run_died(paths["summary_path"])
    if died:
        base["previous_run_died"] = died
    run_summary.write_summary({**base, "status": "running", "pid": os.getpid()}, paths["summary_path"])
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    except Exception as error:  # pylint: disable=broad-except
        cause = _root_cause(error)
        where = f"in {progress.current}" if progress.current else "before any component ran"
        detail = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
        message = (f"The pipeline failed {where}: {detail}" if not isinstance(cause, UserError)
                   else f"The pipeline stopped {where}: {cause}")
        _write_outputs({**base, "status": "failed", "failed_component": progress.current, "error": message,
                        "components": progress.executions, "seconds": round(time.time() - started, 1)})
        # The traceback (this error's and its cause's) reaches the run log as the error leaves
        # console_and_log; the terminal gets one sentence: a UserError (bad input, exit 2), or an
        # InternalError (anything no check foresaw, exit 1) naming the log.
        if isinstance(cause, UserError):
            raise UserError(message.rstrip(".") + f". Details in {log_path}.") from error
        raise InternalError(f"The pipeline failed {where} with {type(cause).__name__}: {detail.rstrip('.')}; "
                            f"the full traceback is in {log_path} (fix what it names, or report it with "
                            "that file).") from error
    finally:
        absl_logger.removeHandler(progress)
        memory.stop()

    summary = run_summary.build_summary(metadata_store.MetadataStore(connection), progress.executions)
    summary.update(base, status="succeeded", seconds=round(time.time() - started, 1))
    _write_outputs(summary)
    log.info("%s", run_summary.format_summary(summary))
    return summary


def _write_outputs(summary: Dict[str, Any]) -> None:
    """run_summary.json and report.html; a report that cannot be drawn never fails the run."""
    from pipeline import run_summary  # pylint: disable=import-outside-toplevel

    run_summary.write_summary(summary, summary["summary_path"])
    try:
        write_report(summary, summary["report_path"])
    except Exception as error:  # pylint: disable=broad-except
        log.warning("the HTML report could not be written: %s", error, exc_info=True)
