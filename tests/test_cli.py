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
    reviews = [text for text in STDIN_REVIEWS if text.strip()]  # one result per non-blank line, in order
    lines = out.splitlines()
    if json_output:
        expected = [{"text": text, "probability": pytest.approx(len(text) / 100), "label": int(len(text) >= 50)}
                    for text in reviews]
        assert [json.loads(line) for line in lines] == expected
    else:
        shown = [text if len(text) <= 70 else text[:67] + "..." for text in reviews]  # long reviews are cut
        assert lines == [f"{len(text) / 100:.4f}\t{'positive' if len(text) >= 50 else 'negative'}\t{short}"
                         for text, short in zip(reviews, shown)]
