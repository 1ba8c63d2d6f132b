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
            (serving / version / "saved_model.pb").write_bytes(b"")
    assert newest_model_dir(str(serving)).endswith("/100")


def test_predict_reads_stdin_when_no_text(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    assert cli.main(["predict", "--serving-dir", str(tmp_path)]) == 2
    assert "No pushed model" in capsys.readouterr().err
