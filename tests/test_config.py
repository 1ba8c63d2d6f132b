import json

import pytest

from pipeline.configs import PipelineConfig
from models.errors import UserError


def test_defaults_match_the_documented_model():
    config = PipelineConfig()
    assert (config.vocab_size, config.oov_buckets, config.model) == (30_000, 1_000, "gru")
    assert config.resolved_pipeline_root == "workdir/pipeline_root"
    assert config.resolved_metadata_path == "workdir/metadata.sqlite"
    assert config.resolved_serving_dir == "workdir/serving"


def test_explicit_paths_win_over_workdir():
    config = PipelineConfig(workdir="/w", serving_dir="/srv/models/imdb")
    assert config.resolved_serving_dir == "/srv/models/imdb"
    assert config.resolved_pipeline_root == "/w/pipeline_root"


@pytest.mark.parametrize("changes, fragment", [
    ({"model": "bert"}, "model must be one of"),
    ({"model": "hub"}, "hub_handle"),
    ({"vocab_size": 0}, "vocab_size must be at least 1"),
    ({"oov_buckets": 0}, "oov_buckets"),
    ({"eval_percent": 70}, "eval_percent"),
    ({"max_rejected_fraction": 1.5}, "max_rejected_fraction"),
    ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"trainer_cpu": -1}, "trainer_cpu must be a number of CPU cores"),
    ({"transform_cpu": "2"}, "transform_cpu must be a number"),
    ({"trainer_memory": "6GB"}, "trainer_memory must be a Kubernetes memory quantity"),
    ({"transform_memory": "0Gi"}, "transform_memory must be a Kubernetes memory quantity"),
    ({"transform_memory": 4}, "transform_memory must be"),
    ({"model": "hub", "hub_handle": "/m", "serving_xla": True}, "serving_xla compiles the GRU tower"),
])
def test_invalid_settings_are_refused_with_a_sentence(changes, fragment):
    with pytest.raises(UserError, match=fragment):
        PipelineConfig(**changes)


def test_from_file_json_and_yaml_with_overrides(tmp_path):
    json_file = tmp_path / "c.json"
    json_file.write_text(json.dumps({"epochs": 5, "batch_size": 16}))
    config = PipelineConfig.from_file(str(json_file), epochs=1, batch_size=None)
    assert (config.epochs, config.batch_size) == (1, 16)
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("model: gru\nvocab_size: 123\nbeam_args: ['--direct_num_workers=1']\n")
    config = PipelineConfig.from_file(str(yaml_file))
    assert config.vocab_size == 123 and config.beam_args == ["--direct_num_workers=1"]


def test_bad_config_files(tmp_path):
    with pytest.raises(UserError, match="Cannot read"):
        PipelineConfig.from_file(str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        PipelineConfig.from_file(str(broken))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"epocs": 3}))
    with pytest.raises(UserError, match="Unknown configuration keys: epocs"):
        PipelineConfig.from_file(str(unknown))


def test_round_trip_through_dict():
    config = PipelineConfig(data_root="/d", epochs=3, beam_args=["--x=1"])
    assert PipelineConfig.from_dict(config.to_dict()) == config


def test_kubeflow_pod_sizes_default_to_the_full_imdb_run_and_can_be_unset():
    config = PipelineConfig()
    assert (config.trainer_cpu, config.trainer_memory) == (2.0, "6Gi")
    assert (config.transform_cpu, config.transform_memory) == (2.0, "4Gi")
    config = PipelineConfig(trainer_cpu=0, trainer_memory="", transform_cpu=0.5, transform_memory="1536Mi")
    assert (config.trainer_cpu, config.trainer_memory, config.transform_cpu) == (0, "", 0.5)


def test_whole_numbers_in_a_file_are_read_as_the_float_settings_they_are(tmp_path):
    """`"accuracy_threshold": 0` in JSON is an int; TFX's parameter type check refuses ints for floats."""
    path = tmp_path / "c.json"
    path.write_text('{"accuracy_threshold": 0, "learning_rate": 1, "epochs": 2}')
    config = PipelineConfig.from_file(str(path))
    assert type(config.accuracy_threshold) is float and type(config.learning_rate) is float
    assert type(config.epochs) is int


@pytest.mark.parametrize("yaml_text, message", [
    ('epochs: "three"', "epochs must be a whole number (int), not the string 'three'."),
    ('accuracy_threshold: "0.8"',
     "accuracy_threshold must be a number (float), not the string '0.8': write 0.8 without quotes."),
    ("epochs: true", "epochs must be a whole number (int), not true."),
    ("batch_size: 2.5", "batch_size must be a whole number (int), not 2.5."),
    ("steps_per_epoch: '5'", "steps_per_epoch must be a whole number (int) or null, not the string '5': "
                             "write 5 without quotes."),
    ("wide_tower: 'yes'", "wide_tower must be true or false (bool), not the string 'yes'."),
    ("pipeline_name: 123", "pipeline_name must be a string, not 123: put 123 in quotes."),
    ("beam_args: --direct_num_workers=1", "beam_args must be a list of strings, not the string "
                                          "'--direct_num_workers=1'."),
    ("auc_threshold: 85", "auc_threshold must be between 0 and 1, not 85.0."),
    ("baseline_margin: -0.01", "baseline_margin must be between 0 and 1, not -0.01."),
    ("min_slice_examples: -5", "min_slice_examples must not be negative, not -5."),
    ("early_stopping_patience: -1", "early_stopping_patience must not be negative, not -1."),
    ("canary_max_seconds: 0", "canary_max_seconds must be greater than 0, not 0.0."),
])
def test_a_value_of_the_wrong_type_or_range_in_a_file_is_refused_naming_the_key(tmp_path, yaml_text, message):
    """Types are checked before ranges: a string where a number belongs is no TypeError from a comparison."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text + "\n")
    with pytest.raises(UserError) as caught:
        PipelineConfig.from_file(str(path))
    assert str(caught.value) == "Invalid configuration: " + message


def test_every_wrong_type_is_named_at_once_and_good_types_pass():
    with pytest.raises(UserError) as caught:
        PipelineConfig.from_dict({"epochs": "3", "learning_rate": "fast", "vocab_size": None})
    text = str(caught.value)
    assert "epochs must be a whole number (int)" in text and "learning_rate must be a number (float)" in text
    assert "vocab_size must be a whole number (int), not null" in text and "Traceback" not in text
    config = PipelineConfig.from_dict({"accuracy_threshold": 1, "auc_threshold": 0, "tail_share": 0.5,
                                       "canaries": [["fine", 1], ["odd", None]], "steps_per_epoch": None})
    assert (config.accuracy_threshold, config.auc_threshold) == (1.0, 0.0)


def test_every_number_setting_declares_its_range():
    """Ranges come from the fields (low/high/above), not from code per setting: every int or float
    setting has one, and every share/threshold/fraction lies in [0, 1]."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(PipelineConfig)
    for field in dataclasses.fields(PipelineConfig):
        kind = [a for a in typing.get_args(hints[field.name]) if a is not type(None)] or [hints[field.name]]
        if kind[0] in (int, float) and field.name not in ("transform_cpu", "trainer_cpu"):
            meta = field.metadata
            assert meta["low"] is not None or meta["above"] is not None, field.name
        if any(word in field.name for word in ("fraction", "threshold", "share", "margin")):
            assert (field.metadata["low"], field.metadata["high"]) == (0.0, 1.0), field.name
