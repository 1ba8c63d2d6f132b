"""A quiet, informative terminal; everything else in a log file.

TensorFlow's C++ side (CUDA factory errors, oneDNN notices) writes straight to file descriptor
2, before and beside Python's logging, so no log level silences it: during a command, fd 2 is
pointed at the log file and Python's `sys.stderr` at a copy of the real terminal. Python
logging then splits by who speaks: the project's own loggers (`imdb.*`: component lines,
training progress, warnings about the data) reach the terminal at INFO; every other library
(absl, Beam, TFMA, tf.data deprecations, Python warnings) only when it reports an ERROR.
The log file gets everything. `verbose` leaves fd 2 alone and shows every INFO record.

Whatever exception leaves a `console_and_log` block is written to its log file with its full
traceback (and never to the terminal: the CLI says it in one sentence naming that file, which
`failure_log` returns); records logged with `extra=LOG_ONLY` go to the file only.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator, Optional, TextIO

from models.errors import Terminated, UserError

PROJECT_LOGGER = "imdb"
RUNNER_LOGGER = PROJECT_LOGGER + ".runner"   # the component start/end lines and the summary
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SILENT = logging.CRITICAL + 1
LOG_ONLY = {"log_only": True}   # logging `extra=`: the record goes to the log file, never to the terminal
_LOG_PATH_ATTRIBUTE = "imdb_log_path"
# Library lines the terminal never needs: the runner's own sentence says the same, with the reason.
_REPEATED_ON_THE_TERMINAL = {("absl", "Execution %d failed.")}


def _is_ours(record: logging.LogRecord) -> bool:
    return record.name == PROJECT_LOGGER or record.name.startswith(PROJECT_LOGGER + ".")


class _ConsoleFilter(logging.Filter):
    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "log_only", False):
            return False
        if not self.verbose and (record.name, record.msg) in _REPEATED_ON_THE_TERMINAL:
            return False
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


def failure_log(error: BaseException) -> Optional[str]:
    """The log file that holds `error`'s traceback, when a `console_and_log` block wrote it."""
    return getattr(error, _LOG_PATH_ATTRIBUTE, None)


def _describe(error: BaseException) -> str:
    if isinstance(error, Terminated):
        return f"terminated by signal {error.signum}"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(error, UserError):
        return f"stopped: {error}"
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"failed with {type(error).__name__}" + (f": {first}" if first else "")


def _record_failure(error: BaseException, log_path: str) -> None:
    """The full traceback of an exception leaving the block, in the log file only; the exception
    remembers the file (innermost block first) for the CLI's sentence."""
    level = logging.ERROR if isinstance(error, Exception) else logging.WARNING
    logging.getLogger(PROJECT_LOGGER).log(level, "%s", _describe(error), exc_info=error, extra=LOG_ONLY)
    if failure_log(error) is None:
        try:
            setattr(error, _LOG_PATH_ATTRIBUTE, log_path)
        except (AttributeError, TypeError):  # an exception type that takes no attributes
            pass


def write_traceback(log_path: str, error: BaseException, what: str) -> Optional[str]:
    """Appends `error`'s traceback to `log_path` when no console block was there to log it
    (a failure before a command set up its log); returns the path, or None if it cannot be written."""
    import time  # pylint: disable=import-outside-toplevel
    import traceback  # pylint: disable=import-outside-toplevel

    try:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR {PROJECT_LOGGER}: {what}\n")
            handle.write("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    except OSError:
        return None
    return log_path


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
            try:
                yield log_path
            except BaseException as error:  # logged here, where the file handler still listens; then re-raised
                if not isinstance(error, (SystemExit, GeneratorExit)):
                    _record_failure(error, log_path)
                raise
    finally:
        logging.captureWarnings(False)
        for handler in (file_handler, console):
            if handler is not None:
                root.removeHandler(handler)
                handler.close()
        for handler, level in saved_levels.items():
            handler.setLevel(level)
        root.setLevel(saved_level)
