"""A quiet, informative terminal; everything else in a log file.

TensorFlow's C++ side (CUDA factory errors, oneDNN notices) writes straight to file descriptor
2, before and beside Python's logging, so no log level silences it: during a command, fd 2 is
pointed at the log file and Python's `sys.stderr` at a copy of the real terminal. Python
logging then splits by who speaks: the project's own loggers (`imdb.*`: component lines,
training progress, warnings about the data) reach the terminal at INFO; every other library
(absl, Beam, TFMA, tf.data deprecations, Python warnings) only when it reports an ERROR.
The log file gets everything. `verbose` leaves fd 2 alone and shows every INFO record.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator, Optional, TextIO

PROJECT_LOGGER = "imdb"
RUNNER_LOGGER = PROJECT_LOGGER + ".runner"   # the component start/end lines and the summary
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SILENT = logging.CRITICAL + 1


def _is_ours(record: logging.LogRecord) -> bool:
    return record.name == PROJECT_LOGGER or record.name.startswith(PROJECT_LOGGER + ".")


class _ConsoleFilter(logging.Filter):
    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose or _is_ours(record):
            return record.levelno >= logging.INFO
        return record.levelno >= logging.ERROR


class _ConsoleFormatter(logging.Formatter):
    """The runner's lines as they are; a component's indented under its start line; warnings and
    errors say so; other libraries' lines name their source."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not _is_ours(record):
            return f"{record.levelname.lower()}: {record.name}: {message}"
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        return message if record.name == RUNNER_LOGGER else "  " + message.replace("\n", "\n  ")


@contextlib.contextmanager
def _native_stderr_to(path: str) -> Iterator[None]:
    """Points fd 2 at `path` (append) and sys.stderr at the terminal it was, until the block ends."""
    sys.stderr.flush()
    terminal_fd = os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(terminal_fd), "w", buffering=1, encoding="utf-8", errors="replace")
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(terminal_fd, 2)
        os.close(terminal_fd)


def _absl_handler() -> logging.Handler:
    """absl's own stderr handler, which it may add to the root logger at any time; the file and
    console handlers here already see every record, so it would only repeat them on the terminal."""
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel  (only where absl is used)

    absl_logging.set_verbosity(absl_logging.INFO)
    return absl_logging.get_absl_handler()


@contextlib.contextmanager
def console_and_log(log_path: str, verbose: bool = False, out: Optional[TextIO] = None,
                    to_stderr: bool = False) -> Iterator[str]:
    """Everything to `log_path`; to the terminal only what a person needs (see above): on `out`
    (default stdout), or on stderr with `to_stderr` (for commands whose stdout is their data)."""
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    root = logging.getLogger()
    saved_level = root.level
    saved_levels = {handler: handler.level for handler in root.handlers + [_absl_handler()]}
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    for handler in saved_levels:  # handlers installed by libraries would print to the terminal
        handler.setLevel(_SILENT)
    root.setLevel(logging.INFO)
    root.addHandler(file_handler)
    logging.captureWarnings(True)
    console = None
    try:
        with contextlib.nullcontext() if verbose else _native_stderr_to(log_path):
            # Made inside: with to_stderr it must write to the terminal, not to the redirected fd 2.
            console = logging.StreamHandler(sys.stderr if to_stderr else out or sys.stdout)
            console.addFilter(_ConsoleFilter(verbose))
            console.setFormatter(_ConsoleFormatter())
            root.addHandler(console)
            yield log_path
    finally:
        logging.captureWarnings(False)
        for handler in (file_handler, console):
            if handler is not None:
                root.removeHandler(handler)
                handler.close()
        for handler, level in saved_levels.items():
            handler.setLevel(level)
        root.setLevel(saved_level)
