"""The CLI contract without running a pipeline: flags, config precedence, data resolution, errors."""
import io
import json
import tarfile

import pytest

from corpus import write_aclimdb
from pipeline import cli
from models.errors import UserError
from pipeline.predict import newest_model_dir


def parse(*argv):
    return cli.build_parser().parse_args(list(argv))


def test_flags_override_config_file_which_overrides_defaults(tmp_path):
    data = write_aclimdb(tmp_path / "d", n_train=2, n_test=0)
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps({"epochs": 7, "batch_size": 8, "vocab_size": 500}))
    args = parse("run", "--data", str(data), "--workdir", str(tmp_path / "w"), "--config", str(config_file),
                 "--epochs", "1", "--beam-arg=--direct_num_workers=1", "--no-cache")
    config = cli.config_from_args(args)
    assert (config.epochs, config.batch_size, config.vocab_size) == (1, 8, 500)
    assert config.beam_args == ["--direct_num_workers=1"] and config.enable_cache is False
    assert config.workdir == str(tmp_path / "w") and config.data_root == str(data)
    assert config.oov_buckets == 1000  # untouched default


def test_every_run_flag_is_a_config_field():
    fields = set(cli.PipelineConfig.field_names())
    assert set(cli.RUN_FLAGS) <= fields
    args = parse("run", "--model", "hub", "--hub-handle", "/m", "--hub-trainable", "--accuracy-threshold", "0.7")
    assert (args.model, args.hub_handle, args.hub_trainable, args.accuracy_threshold) == ("hub", "/m", True, 0.7)


def test_unknown_model_family_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        parse("run", "--model", "bert")
    assert "invalid choice" in capsys.readouterr().err


def test_tarball_data_is_extracted_once_into_the_workdir(tmp_path):
    data = write_aclimdb(tmp_path / "src", n_train=4, n_test=2)
    archive = tmp_path / "imdb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(data, arcname="aclImdb")
    workdir = tmp_path / "w"
    first = cli.resolve_data(str(archive), str(workdir))
    assert first.endswith("aclImdb") and str(workdir / "data") in first
    assert cli.resolve_data(str(archive), str(workdir)) == first


def test_missing_data_is_a_sentence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="imdb-pipeline data download"):
        cli.resolve_data(None, str(tmp_path / "w"))
    with pytest.raises(UserError, match="does not exist"):
        cli.resolve_data(str(tmp_path / "nope"), str(tmp_path / "w"))


def test_main_turns_user_errors_into_exit_code_2(tmp_path, capsys):
    assert cli.main(["run", "--data", str(tmp_path / "missing"), "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: The data path") and "Traceback" not in err


def test_newest_model_dir_picks_the_highest_complete_version(tmp_path):
    with pytest.raises(UserError, match="No serving folder"):
        newest_model_dir(str(tmp_path / "serving"))
    serving = tmp_path / "serving"
    for version, complete in (("100", True), ("20", True), ("300", False)):
        (serving / version).mkdir(parents=True)
        if complete:
            (serving / version / "saved_model.pb").write_bytes(b"graph")
    assert newest_model_dir(str(serving)).endswith("/100")


@pytest.fixture(scope="module")
def length_model_serving_dir(tmp_path_factory):
    """A real TF Serving folder whose model 1 scores a review by its length: probability = chars / 100.

    Its serving_default signature has the exported model's interface (string `text` in, `probability`
    and `label` out), so the scores show exactly which strings reached the model.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    class LengthModel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            probability = tf.minimum(tf.cast(tf.strings.length(text, unit="UTF8_CHAR"), tf.float32) / 100.0, 1.0)
            return {"probability": probability, "label": tf.cast(probability >= 0.5, tf.int64)}

    serving = tmp_path_factory.mktemp("serving")
    model = LengthModel()
    tf.saved_model.save(model, str(serving / "1"), signatures={"serving_default": model.serve})
    return serving


# Fed to stdin joined by newlines (none after the last line); the blank and all-space lines are skipped.
STDIN_REVIEWS = ["A good film.", "", "   ",
                 "A long review that keeps going and going, past fifty characters and then past seventy.",
                 "Spaced out", "ok"]


@pytest.mark.parametrize("json_output", [True, False])
def test_predict_reads_stdin_when_no_text(length_model_serving_dir, monkeypatch, capsys, json_output):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(STDIN_REVIEWS)))
    argv = ["predict", "--serving-dir", str(length_model_serving_dir)] + (["--json"] if json_output else [])
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert "error" not in err
    blank = "blank line: not scored"
    lines = out.splitlines()  # one row per input line, in order: blank lines say so
    if json_output:
        expected = [{"text": text, "probability": pytest.approx(len(text) / 100), "label": int(len(text) >= 50)}
                    if text.strip() else {"text": text, "probability": None, "label": None, "note": blank}
                    for text in STDIN_REVIEWS]
        assert [json.loads(line) for line in lines] == expected
    else:
        shown = [text if len(text) <= 70 else text[:67] + "..." for text in STDIN_REVIEWS]  # long reviews are cut
        assert lines == [f"{len(text) / 100:.4f}\t{'positive' if len(text) >= 50 else 'negative'}\t{short}"
                         if text.strip() else f"-\t-\t({blank})" for text, short in zip(STDIN_REVIEWS, shown)]


# -- one mechanism for every failure: exit 2 for bad input, 1 for the rest, the traceback in a log --------------
@pytest.fixture
def tmpdir_logs(tmp_path, monkeypatch):
    """$TMPDIR/imdb-pipeline/<command>.log, with $TMPDIR this test's own folder."""
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path / "tmp" / "imdb-pipeline"


def _one_line(err):
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


def test_an_unexpected_error_before_the_run_log_is_one_line_exit_1_and_a_traceback_in_the_command_log(
        tmp_path, tmpdir_logs, monkeypatch, capfd):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the archive reader broke\nsecond line")

    monkeypatch.setattr(cli, "resolve_data", broken)
    assert cli.main(["run", "--data", str(tmp_path), "--workdir", str(tmp_path / "w")]) == 1
    out, err = capfd.readouterr()
    line = _one_line(err)
    log = tmpdir_logs / "run.log"
    assert line.startswith("error: imdb-pipeline run failed unexpectedly with RuntimeError: the archive reader "
                           "broke, in tests/test_cli.py:") and "(broken)" in line
    assert f"the full traceback is in {log}: fix what it names, or report it as a bug with that file." in line
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged and "in config_from_args" in logged
    assert "RuntimeError: the archive reader broke" in logged and out == ""


def test_an_unexpected_error_inside_a_run_goes_to_the_run_log(tmp_path, monkeypatch, capfd):
    data = write_aclimdb(tmp_path / "d", n_train=2, n_test=0)

    def broken(_config):
        raise KeyError("pipeline_root")

    monkeypatch.setattr("pipeline.local_runner.check_storage", broken)
    assert cli.main(["run", "--data", str(data), "--workdir", str(tmp_path / "w")]) == 1
    _, err = capfd.readouterr()
    line = _one_line(err)
    logs = list((tmp_path / "w" / "logs").glob("run-*.log"))
    assert len(logs) == 1 and f"the full traceback is in {logs[0]}" in line and "KeyError: 'pipeline_root'" in line
    logged = logs[0].read_text()
    assert "ERROR imdb: failed with KeyError" in logged and "Traceback (most recent call last)" in logged
    assert "in _run" in logged


def test_an_unexpected_error_in_predict_goes_to_its_command_log(tmp_path, tmpdir_logs, monkeypatch, capfd):
    def broken(_serving_dir):
        raise ValueError("a tensor of the wrong shape")

    monkeypatch.setattr("pipeline.predict.Predictor.newest", broken)
    assert cli.main(["predict", "--serving-dir", str(tmp_path / "serving"), "a review"]) == 1
    out, err = capfd.readouterr()
    line = _one_line(err)
    assert "imdb-pipeline predict failed unexpectedly with ValueError: a tensor of the wrong shape" in line
    assert str(tmpdir_logs / "predict.log") in line and out == ""
    assert "Traceback (most recent call last)" in (tmpdir_logs / "predict.log").read_text()


def test_a_wrong_type_in_a_config_file_is_exit_2_in_one_sentence(tmp_path, capfd):
    data = write_aclimdb(tmp_path / "d", n_train=2, n_test=0)
    config = tmp_path / "c.yaml"
    config.write_text('epochs: "three"\naccuracy_threshold: "0.8"\n')
    assert cli.main(["run", "--data", str(data), "--workdir", str(tmp_path / "w"), "--config", str(config)]) == 2
    line = _one_line(capfd.readouterr().err)
    assert line == ("error: Invalid configuration: epochs must be a whole number (int), not the string 'three'; "
                    "accuracy_threshold must be a number (float), not the string '0.8': write 0.8 without quotes.")
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("flag", ["--workdir", "--serving-dir", "--pipeline-root"])
def test_a_folder_flag_naming_a_regular_file_is_refused_before_the_lock(tmp_path, capfd, flag):
    data = write_aclimdb(tmp_path / "d", n_train=2, n_test=0)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    workdir = a_file if flag == "--workdir" else tmp_path / "w"
    argv = ["run", "--data", str(data), "--workdir", str(workdir)]
    if flag != "--workdir":
        argv += [flag, str(a_file)]
    assert cli.main(argv) == 2
    line = _one_line(capfd.readouterr().err)
    assert line == (f"error: {flag} {a_file} is a file, not a folder; name a folder (it is created if missing) "
                    "or move the file away.")
    assert a_file.read_text() == "not a folder"
    assert not (tmp_path / "w").exists()  # no lock, no log, no component


def test_a_folder_below_a_regular_file_cannot_be_created(tmp_path, capfd):
    data = write_aclimdb(tmp_path / "d", n_train=2, n_test=0)
    (tmp_path / "notes.txt").write_text("x")
    assert cli.main(["run", "--data", str(data), "--workdir", str(tmp_path / "notes.txt" / "w")]) == 2
    assert _one_line(capfd.readouterr().err) == (
        f"error: --workdir {tmp_path / 'notes.txt' / 'w'} cannot be created: {tmp_path / 'notes.txt'} is a file, "
        "not a folder.")


def test_pretrained_embeddings_naming_a_folder_is_refused(tmp_path, capfd):
    data = write_aclimdb(tmp_path / "d", n_train=2, n_test=0)
    assert cli.main(["run", "--data", str(data), "--workdir", str(tmp_path / "w"),
                     "--pretrained-embeddings", str(tmp_path)]) == 2
    assert _one_line(capfd.readouterr().err) == (
        f"error: --pretrained-embeddings {tmp_path} is a folder; it must name a file.")


def test_predict_with_a_serving_dir_that_is_a_file_is_one_sentence(tmp_path, capfd):
    a_file = tmp_path / "model.txt"
    a_file.write_text("x")
    assert cli.main(["predict", "--serving-dir", str(a_file), "a review"]) == 2
    assert _one_line(capfd.readouterr().err) == (
        f"error: --serving-dir {a_file} is a file, not a folder; name the TF Serving folder that holds the "
        "<version>/ folders (a run's <workdir>/serving).")
