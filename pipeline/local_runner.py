"""Runs the pipeline on this machine: LocalDagRunner, Beam DirectRunner, ML Metadata in SQLite.

Adds what a person running it needs: a line as each component starts and ends (with time and
whether the cache served it), the full log in `<workdir>/logs/`, a failure named by component
in one sentence, and the run summary printed and written to `<workdir>/run_summary.json`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from typing import Any, Dict, Optional, TextIO

from pipeline.configs import PipelineConfig
from models.errors import UserError

LOG_DIR = "logs"


class ComponentProgress(logging.Handler):
    """Listens to TFX's launcher log records and prints one line per component start/end."""

    def __init__(self, out: TextIO):
        super().__init__(level=logging.INFO)
        self.out = out
        self.executions: Dict[str, Dict[str, Any]] = {}
        self.current: Optional[str] = None
        self._started = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        message, args = record.msg, record.args or ()
        if message == "Component %s is running.":
            self.current, self._started = str(args[0]), time.time()
            self.executions[self.current] = {"execution_id": None, "cached": False, "seconds": None}
            print(f"[{time.strftime('%H:%M:%S')}] {self.current} started", file=self.out, flush=True)
        elif self.current and message == "Going to run a new execution %d":
            self.executions[self.current]["execution_id"] = int(args[0])
        elif self.current and message == "A cached execution %d is used.":
            self.executions[self.current].update(execution_id=int(args[0]), cached=True)
        elif message == "Component %s is finished." and str(args[0]) in self.executions:
            info = self.executions[str(args[0])]
            info["seconds"] = round(time.time() - self._started, 1)
            how = "from cache" if info["cached"] else f"{info['seconds']:.0f}s"
            print(f"[{time.strftime('%H:%M:%S')}] {args[0]} finished ({how})", file=self.out, flush=True)
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
            stat = os.stat(os.path.join(root, name))
            digest.update(f"{os.path.relpath(os.path.join(root, name), data_root)}:{stat.st_size}:"
                          f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _quiet_console_and_log_to(log_path: str) -> logging.Handler:
    """Full INFO log to a file; the console keeps only warnings (and our progress lines)."""
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel

    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logging.get_absl_handler().setLevel(logging.WARNING)
    root = logging.getLogger()
    for handler in root.handlers:  # e.g. a basicConfig console handler some library installed
        handler.setLevel(max(handler.level, logging.WARNING))
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    file_handler.setLevel(logging.INFO)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.setLevel(logging.INFO)
    root.addHandler(file_handler)
    return file_handler


def _root_cause(error: BaseException) -> BaseException:
    seen = error
    while True:
        if isinstance(seen, UserError):
            return seen
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            return error
        seen = nxt


def run_local(config: PipelineConfig, out: TextIO = sys.stdout) -> Dict[str, Any]:
    """Runs the whole pipeline; returns the run summary (also written to the workdir)."""
    from components.imdb_reader import detect_layout  # pylint: disable=import-outside-toplevel
    from ml_metadata.metadata_store import metadata_store  # pylint: disable=import-outside-toplevel
    from tfx import v1 as tfx  # pylint: disable=import-outside-toplevel

    from pipeline import run_summary  # pylint: disable=import-outside-toplevel
    from pipeline.pipeline import create_pipeline  # pylint: disable=import-outside-toplevel

    detect_layout(config.data_root)  # a clear error now rather than inside ExampleGen later
    if not config.input_fingerprint:
        config = config.replace(input_fingerprint=input_fingerprint(config.data_root))
    os.makedirs(os.path.join(config.workdir, LOG_DIR), exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(config.resolved_metadata_path)), exist_ok=True)
    log_path = os.path.join(config.workdir, LOG_DIR, time.strftime("run-%Y%m%d-%H%M%S.log"))
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.resolved_metadata_path)
    pipeline = create_pipeline(config, metadata_connection_config=connection)

    progress = ComponentProgress(out)
    file_handler = _quiet_console_and_log_to(log_path)
    absl_logger = logging.getLogger("absl")
    absl_logger.addHandler(progress)
    started = time.time()
    summary_path = os.path.join(config.workdir, run_summary.SUMMARY_FILE)
    print(f"Running pipeline '{config.pipeline_name}' ({config.model} model) on {config.data_root}; "
          f"full log: {log_path}", file=out, flush=True)
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    except Exception as error:  # pylint: disable=broad-except
        cause = _root_cause(error)
        where = f"in {progress.current}" if progress.current else "before any component ran"
        detail = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
        message = (f"The pipeline failed {where}: {detail}" if not isinstance(cause, UserError)
                   else f"The pipeline stopped {where}: {cause}")
        run_summary.write_summary({"status": "failed", "failed_component": progress.current, "error": message,
                                   "log": log_path, "components": progress.executions,
                                   "config": config.to_dict()}, summary_path)
        raise UserError(message.rstrip(".") + f". Details in {log_path}.") from error
    finally:
        absl_logger.removeHandler(progress)
        logging.getLogger().removeHandler(file_handler)
        file_handler.close()

    store = metadata_store.MetadataStore(connection)
    summary = run_summary.build_summary(store, progress.executions)
    summary.update(status="succeeded", seconds=round(time.time() - started, 1), log=log_path,
                   summary_path=summary_path, model_family=config.model, config=config.to_dict())
    run_summary.write_summary(summary, summary_path)
    print(run_summary.format_summary(summary), file=out, flush=True)
    return summary
