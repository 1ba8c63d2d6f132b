"""`imdb-pipeline`: run the pipeline, score reviews, fetch the data, build Hub modules, compile for Kubeflow.

Every failure is one sentence on stderr (what failed, where, what to do) and an exit code: 2 for
bad input (a `UserError`: a setting, a path, the data), 1 for anything else (a bug, a crashed
library), whose full traceback goes to the run's log (`<workdir>/logs/run-*.log`, once `run` has
one) or else the command's log (`$TMPDIR/imdb-pipeline/<command>.log`), named in the sentence;
130 for Ctrl-C, 143 for SIGTERM.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
import typing
import warnings
from typing import Any, Dict, List, Optional

from models.errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, InternalError, Terminated, UserError
from models.settings import GRU_ARCHITECTURES, LEARNING_RATE_SCHEDULES
from pipeline.configs import MODEL_FAMILIES, PipelineConfig, load_config_file
from pipeline.console import console_and_log, failure_log, write_traceback
from pipeline.hub_commands import add_commands as add_hub_commands
from pipeline.kubeflow_commands import add_commands as add_kubeflow_commands
from pipeline.run_lock import check_folder

DEFAULT_DATA_DIR = "data"  # where `data download` puts aclImdb, and where `run` looks by default
# Config fields that `run` exposes as --flags (the rest: --config FILE).
RUN_FLAGS = ("model", "gru_architecture", "wide_tower", "epochs", "steps_per_epoch", "early_stopping_patience", "evaluations_per_epoch",
             "batch_size", "learning_rate", "learning_rate_schedule", "vocab_size", "oov_buckets",
             "max_tokens", "tail_share", "embedding_dim", "gru_units", "pretrained_embeddings", "hub_handle", "hub_sha256",
             "hub_trainable", "eval_percent", "max_rejected_fraction", "max_review_bytes",
             "min_train_examples", "min_eval_examples", "min_label_fraction", "label_drift_threshold",
             "length_drift_threshold", "accuracy_threshold", "auc_threshold", "baseline_margin",
             "min_slice_examples", "canary_max_seconds", "keep_versions", "seed", "deterministic_ops", "serving_xla",
             "pipeline_root", "metadata_path", "serving_dir")

CHOICES = {"model": MODEL_FAMILIES, "gru_architecture": GRU_ARCHITECTURES,
           "learning_rate_schedule": LEARNING_RATE_SCHEDULES}


def _flag_type(field: dataclasses.Field):
    hint = typing.get_type_hints(PipelineConfig)[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RUN_FLAGS field; help and default come from PipelineConfig, written only there.
    Flags default to None so a --config file's value is kept unless the flag is given."""
    fields = {f.name: f for f in dataclasses.fields(PipelineConfig)}
    defaults = PipelineConfig.defaults()
    for name in RUN_FLAGS:
        flag, kind = "--" + name.replace("_", "-"), _flag_type(fields[name])
        default = defaults[name]
        shown = "none" if default is None else ("on" if default is True else "off" if default is False else default)
        text = PipelineConfig.help(name)
        text += "" if "(default" in text else f" (default: {shown})"
        if kind is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif name in CHOICES:
            parser.add_argument(flag, dest=name, choices=CHOICES[name], default=None, help=text)
        else:
            parser.add_argument(flag, dest=name, type=kind, default=None, metavar=name.upper(), help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imdb-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true",
                        help="show every library's log lines on the terminal too (TensorFlow, absl, Beam)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the whole pipeline locally (Beam DirectRunner, MLMD on SQLite)",
                              description="Run the whole pipeline locally. Every setting below can also come "
                                          "from --config FILE; a flag given here wins.")
    run.add_argument("--data", help="aclImdb folder, a .tar.gz of one, or a text,label CSV "
                                    f"(default: {DEFAULT_DATA_DIR}/aclImdb from `data download`)")
    run.add_argument("--workdir", help="holds pipeline_root, metadata, serving/, logs/, run_summary.json and "
                                       "report.html (default: ./workdir)")
    run.add_argument("--config", help="JSON or YAML file of PipelineConfig settings; flags override it")
    run.add_argument("--beam-arg", dest="beam_args", action="append",
                     help="extra Beam pipeline option, written --beam-arg=--OPTION=VALUE (repeatable; default: none)")
    run.add_argument("--wait", action="store_true",
                     help="if another run holds the workdir, wait for it instead of refusing (default: refuse)")
    run.add_argument("--no-cache", dest="enable_cache", action="store_false", default=None,
                     help="re-run every component even when its inputs did not change (default: cache on)")
    _add_config_flags(run)

    predict = commands.add_parser("predict", help="score reviews with the newest pushed model")
    where = predict.add_mutually_exclusive_group()
    where.add_argument("--workdir", default="workdir", help="workdir of a run; uses <workdir>/serving (default: ./workdir)")
    where.add_argument("--serving-dir", help="a TF Serving model folder holding <version>/ subfolders (default: none)")
    predict.add_argument("--json", action="store_true", help="one JSON object per line: text, probability, label")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="reviews to score (default: one per line on stdin)")

    data = commands.add_parser("data", help="fetch, verify and unpack the IMDB data set")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    download = data_commands.add_parser("download", help="fetch, verify and unpack aclImdb_v1.tar.gz")
    download.add_argument("--url", help="archive URL (default: Stanford's aclImdb_v1.tar.gz)")
    download.add_argument("--sha256", help="expected SHA-256 of the archive (default: the official one)")
    download.add_argument("--dest", default=DEFAULT_DATA_DIR, help=f"target folder (default: ./{DEFAULT_DATA_DIR})")
    download.add_argument("--insecure-no-checksum", action="store_true",
                          help="accept a custom --url without --sha256 (unverified; never reused from an earlier "
                               "extraction)")
    add_hub_commands(commands)
    add_kubeflow_commands(commands)  # compile, submit, schedule
    return parser


def resolve_data(data: Optional[str], workdir: str) -> str:
    """--data as the pipeline needs it: archives are unpacked (safely, once) into the workdir."""
    from pipeline import data_download  # pylint: disable=import-outside-toplevel

    if not data:
        default = os.path.join(DEFAULT_DATA_DIR, "aclImdb")
        if not os.path.isdir(default):
            raise UserError(f"No data given and none at ./{default}: run `imdb-pipeline data download` "
                            "or pass --data PATH (an aclImdb folder, its .tar.gz, or a CSV).")
        return os.path.abspath(default)
    if not os.path.exists(data) and "://" not in data:
        raise UserError(f"The data path {data} does not exist.")
    if data.endswith((".tar.gz", ".tgz")):
        return str(data_download.extract_archive(data, os.path.join(workdir, "data")))
    return data if "://" in data else os.path.abspath(data)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    values: Dict[str, Any] = load_config_file(args.config) if args.config else {}
    flags = {name: getattr(args, name) for name in RUN_FLAGS + ("beam_args", "enable_cache")}
    values.update({k: v for k, v in flags.items() if v is not None})
    values["workdir"] = os.path.abspath(args.workdir or values.get("workdir") or "workdir")
    check_folder(values["workdir"], "--workdir")  # before an archive is unpacked into it
    values["data_root"] = resolve_data(args.data or values.get("data_root"), values["workdir"])
    return PipelineConfig.from_dict(values)


def command_run(args: argparse.Namespace) -> int:
    from pipeline.local_runner import run_local  # pylint: disable=import-outside-toplevel  (sets up the console first)

    summary = run_local(config_from_args(args), verbose=args.verbose, wait=args.wait)
    return 0 if summary.get("status") == "succeeded" else 1


def command_predict(args: argparse.Namespace) -> int:
    """One output row per input line (or argument), in order: a blank one gets a row with no score
    and a note; a review whose score says little is scored, noted, and warned about on stderr."""
    from models import storage  # pylint: disable=import-outside-toplevel
    from pipeline.predict import Predictor, read_lines  # pylint: disable=import-outside-toplevel

    serving_dir = args.serving_dir or os.path.join(args.workdir, "serving")
    flag = "--serving-dir" if args.serving_dir else "--workdir's serving folder"
    if "://" not in serving_dir and os.path.exists(serving_dir) and not os.path.isdir(serving_dir):
        raise UserError(f"{flag} {serving_dir} is a file, not a folder; name the TF Serving folder that holds "
                        "the <version>/ folders (a run's <workdir>/serving).")
    storage.preflight({"--serving-dir": serving_dir})
    predictor = Predictor.newest(storage.normalize(serving_dir))
    lines = args.texts or read_lines(sys.stdin)
    for row in predictor.predict_rows(lines, what="argument" if args.texts else "line"):
        if args.json:
            record = {"text": row.text,
                      "probability": None if row.probability is None else round(row.probability, 6),
                      "label": row.label}
            if row.note:
                record["note"] = row.note
            print(json.dumps(record), flush=True)
        elif row.probability is None:
            print(f"-\t-\t({row.note})", flush=True)
        else:
            shown = row.text if len(row.text) <= 70 else row.text[:67] + "..."
            print(f"{row.probability:.4f}\t{'positive' if row.label else 'negative'}\t{shown}", flush=True)
    return 0


def command_data(args: argparse.Namespace) -> int:
    from pipeline import data_download  # pylint: disable=import-outside-toplevel

    url = args.url or data_download.DEFAULT_URL
    folder = data_download.download(url, args.dest, sha256=args.sha256, progress=True,
                                    insecure_no_checksum=args.insecure_no_checksum)
    print(f"IMDB reviews ready in {folder}")
    return 0


def _command_log(command: str) -> str:
    """Where a command other than `run` sends TensorFlow's native chatter (run has its run log)."""
    return os.path.join(tempfile.gettempdir(), "imdb-pipeline", f"{command}.log")


def _enable_object_storage(args: argparse.Namespace) -> None:
    """s3:// readable by TensorFlow and Beam when a flag names it or an S3 endpoint is configured;
    an unknown scheme refused in one sentence (each command checks its own locations further)."""
    from models import storage  # pylint: disable=import-outside-toplevel

    uris = {name: value for name, value in vars(args).items() if isinstance(value, str) and "://" in value}
    for name, uri in uris.items():
        if storage.scheme_of(uri) not in ("http", "https"):
            storage.check_scheme(uri, "--" + name.replace("_", "-"))
    storage.enable_for(uris.values())


def _where(error: BaseException) -> str:
    """The innermost frame of `error`'s traceback, as file:line (function)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "an unknown place"
    frame = frames[-1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.relpath(frame.filename, root) if frame.filename.startswith(root + os.sep) else frame.filename
    return f"{path}:{frame.lineno} ({frame.name})"


def internal_error_sentence(command: str, error: BaseException, log_path: Optional[str]) -> str:
    """One line for an exception nobody foresaw: what failed, where, and what to do."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = text if len(text) <= 200 else text[:197] + "..."
    what = f"{type(error).__name__}: {text}" if text else type(error).__name__
    todo = (f"the full traceback is in {log_path}: fix what it names, or report it as a bug with that file"
            if log_path else "its traceback could not be written to a log: report it as a bug")
    return f"imdb-pipeline {command} failed unexpectedly with {what}, in {_where(error)}; {todo}."


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (Kubernetes stopping a pod, `kill`) raises `Terminated`, a KeyboardInterrupt, in the
    main thread: whatever cleans up after Ctrl-C (the workdir lock, temporary folders, the console)
    cleans up after it too. A second SIGTERM during that clean-up ends the process at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _command_name(args: argparse.Namespace) -> str:
    sub = getattr(args, "data_command", None) or getattr(args, "hub_command", None)
    return f"{args.command} {sub}" if sub else args.command


def main(argv: Optional[List[str]] = None) -> int:
    # google-api-core warns at import that Python 3.10 is old; TFX 1.16 supports nothing newer.
    warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core.*")
    args = build_parser().parse_args(argv)
    handlers = {"run": command_run, "predict": command_predict, "data": command_data}
    handler = getattr(args, "handler", None) or handlers[args.command]
    console = (contextlib.nullcontext() if args.command in ("run", "data")
               else console_and_log(_command_log(args.command), verbose=args.verbose, to_stderr=True))
    try:
        with _sigterm_as_interrupt():
            with console:
                if args.command not in ("run", "data"):  # run checks its locations once its log is set up
                    _enable_object_storage(args)
                return handler(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Terminated as error:
        resume = "; the next run on this workdir resumes from the components that finished" \
            if args.command == "run" else ""
        print(f"terminated (SIGTERM){resume}", file=sys.stderr)
        return 128 + error.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except InternalError as error:  # already one sentence naming its log
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    except Exception as error:  # pylint: disable=broad-except  (the one place every unforeseen error ends)
        log_path = failure_log(error) or write_traceback(
            _command_log(args.command), error, f"imdb-pipeline {_command_name(args)} failed")
        print(f"error: {internal_error_sentence(_command_name(args), error, log_path)}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


def entry() -> None:
    """The `imdb-pipeline` executable: main()'s code, kept even when S3 use would abort the exit."""
    from models import storage  # pylint: disable=import-outside-toplevel

    storage.exit_process(main())


if __name__ == "__main__":
    entry()
