"""The terminal shows the project's lines; TensorFlow's native chatter and other libraries'
INFO/WARNING go to the log file only; `--help` teaches every flag with its default."""
import logging
import os
import re

import pytest

from pipeline import cli
from pipeline.configs import PipelineConfig
from pipeline.console import console_and_log


def help_text(capsys, *argv):
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    return capsys.readouterr().out


def test_every_run_flag_has_help_and_its_default(capsys):
    text = help_text(capsys, "run")
    flat = re.sub(r"\s+", " ", text).replace("- ", "-")  # argparse wraps lines after hyphens
    for name in cli.RUN_FLAGS:
        flag = "--" + name.replace("_", "-")
        assert flag in text, flag
        assert PipelineConfig.help(name) in flat, flag
    defaults = PipelineConfig.defaults()
    assert f"(default: {defaults['epochs']})" in flat and f"(default: {defaults['vocab_size']})" in flat
    assert "(default: none)" in flat and "(default: off)" in flat   # pretrained_embeddings, hub_trainable
    assert flat.count("(default:") >= len(cli.RUN_FLAGS)


def test_top_level_help_lists_each_command_with_a_line(capsys):
    text = help_text(capsys)
    for command in ("run", "predict", "data", "hub", "compile", "submit", "schedule"):
        assert re.search(rf"^\s+{command}\s+\S", text, re.M), command
    assert "--verbose" in text


def test_console_shows_project_lines_and_logs_everything(tmp_path, capfd):
    log_path = tmp_path / "logs" / "run.log"
    with console_and_log(str(log_path)) as path:
        logging.getLogger("imdb.runner").info("[12:00:00] Trainer started")
        logging.getLogger("imdb.trainer").info("epoch 1 done")
        logging.getLogger("imdb.example_gen").warning("rejected 3 of 300 reviews")
        logging.getLogger("absl").warning("ArtifactQuery.property_predicate is not supported")
        logging.getLogger("tensorflow").info("deprecation instructions")
        logging.getLogger("apache_beam").error("a worker died")
        import warnings
        warnings.warn("a library's FutureWarning", FutureWarning)
        os.write(2, b"E external/local_xla/cuda_fft.cc] Unable to register cuFFT factory\n")
        assert path == str(log_path)
    out, err = capfd.readouterr()
    assert out.splitlines() == ["[12:00:00] Trainer started", "  epoch 1 done",
                                "  warning: rejected 3 of 300 reviews", "error: apache_beam: a worker died"]
    assert err == ""
    logged = log_path.read_text()
    for line in ("Trainer started", "epoch 1 done", "rejected 3 of 300", "property_predicate", "deprecation",
                 "a worker died", "FutureWarning", "Unable to register cuFFT"):
        assert line in logged, line
    os.write(2, b"after the block\n")  # the terminal's fd 2 is back
    assert capfd.readouterr().err == "after the block\n"


def test_verbose_shows_every_library_and_leaves_native_stderr_alone(tmp_path, capfd):
    with console_and_log(str(tmp_path / "run.log"), verbose=True):
        logging.getLogger("absl").info("launcher detail")
        os.write(2, b"native line\n")
    out, err = capfd.readouterr()
    assert "info: absl: launcher detail" in out and "native line" in err
