"""The one reading of the serving folder: which versions are complete, and which one loads.

Also home of the tiny real SavedModel the Pusher, predict and baseline tests share
(`tiny_models`, `plant`): its serving_default takes string `text` and returns a constant
`probability` (and `label`), so a score tells which version answered.
"""
import json
import logging
import shutil

import pytest

from components import serving_dir as sd


def save_tiny_model(path, probability):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.probability = tf.Variable(probability, dtype=tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            probability = tf.fill(tf.shape(text), self.probability)
            return {"probability": probability, "label": tf.cast(probability >= 0.5, tf.int64)}

    model = Tiny()
    tf.saved_model.save(model, str(path), signatures={"serving_default": model.serve})
    return path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """tiny_models(p) -> a SavedModel folder whose every score is p (saved once per p per module)."""
    root = tmp_path_factory.mktemp("tiny_models")
    cache = {}

    def get(probability):
        if probability not in cache:
            cache[probability] = save_tiny_model(root / f"p{len(cache)}", probability)
        return cache[probability]
    return get


def plant(serving, version, model, marker=True, empty_graph=False):
    """`serving/<version>/` holding a copy of `model`, with a completion marker unless told not;
    `empty_graph` truncates its saved_model.pb to 0 bytes, as in the incident of issue 9."""
    folder = serving / str(version)
    shutil.copytree(model, folder)
    if marker:
        sd.write_marker(str(folder), {"format": 1, "version": str(version), "model_digest": "planted"})
    if empty_graph:
        (folder / "saved_model.pb").write_bytes(b"")
    return folder


def test_completeness_rules(tmp_path, tiny_models):
    model = tiny_models(0.3)
    plant(tmp_path, 100, model, marker=False)                        # an older release's push
    plant(tmp_path, 150, model, marker=False, empty_graph=True)      # older release, damaged
    plant(tmp_path, 200, model)                                      # this Pusher's push
    plant(tmp_path, 250, model, empty_graph=True)                    # marked: complete (loading is another matter)
    plant(tmp_path, 300, model, marker=False)                        # published, marker not yet written
    (tmp_path / "300" / sd.EXTRA_DIR).mkdir()
    (tmp_path / "300" / sd.IN_PROGRESS_RELPATH).write_text("push underway")
    torn = plant(tmp_path, 400, model)                               # a half-written marker
    (torn / sd.MARKER_RELPATH).write_text('{"version": "4')
    shutil.copytree(model, tmp_path / ".staging-500-1700000000-abcd")  # TF Serving ignores it; so do readers
    (tmp_path / "notes").mkdir()

    assert sd.numeric_versions(str(tmp_path)) == ["400", "300", "250", "200", "150", "100"]
    assert sd.complete_versions(str(tmp_path)) == ["250", "200", "100"]
    assert sd.newest_complete_version(str(tmp_path)) == "250"
    assert sd.staging_folders(str(tmp_path)) == [".staging-500-1700000000-abcd"]
    assert sd.read_marker(str(tmp_path / "200"))["version"] == "200"


def test_missing_or_empty_folder_has_no_versions(tmp_path):
    assert sd.complete_versions(str(tmp_path / "missing")) == []
    assert sd.newest_complete_version(str(tmp_path / "missing")) is None
    assert sd.newest_loadable_version(str(tmp_path)) is None
    assert sd.staging_folders(str(tmp_path / "missing")) == []


def test_newest_loadable_version_skips_a_broken_one_with_a_warning(tmp_path, tiny_models, caplog):
    plant(tmp_path, 100, tiny_models(0.2))
    plant(tmp_path, 200, tiny_models(0.7))
    plant(tmp_path, 300, tiny_models(0.9), empty_graph=True)
    with caplog.at_level(logging.WARNING, logger="imdb.serving"):
        version, loaded = sd.newest_loadable_version(str(tmp_path))
    assert version == "200"
    assert float(loaded.probability.numpy()) == pytest.approx(0.7)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warning.getMessage()
    assert "version 300" in message and message.endswith("does not load: saved_model.pb is empty (0 bytes)")


def test_when_every_version_is_broken_there_is_none(tmp_path, tiny_models, caplog):
    plant(tmp_path, 100, tiny_models(0.2), empty_graph=True)
    plant(tmp_path, 200, tiny_models(0.7), empty_graph=True)
    with caplog.at_level(logging.WARNING, logger="imdb.serving"):
        assert sd.newest_loadable_version(str(tmp_path)) is None
    assert len(caplog.messages) == 2
    assert "version 200" in caplog.messages[0] and "version 100" in caplog.messages[1]
    assert sd.load_error(str(tmp_path / "100")) is not None
    assert sd.load_error(str(tmp_path / "missing")) is not None


def test_the_marker_is_json_written_whole(tmp_path):
    sd.write_marker(str(tmp_path), {"version": "7", "model_digest": "abc"})
    assert json.loads((tmp_path / sd.MARKER_RELPATH).read_text()) == {"version": "7", "model_digest": "abc"}
    assert [p.name for p in (tmp_path / sd.EXTRA_DIR).iterdir()] == [sd.MARKER_NAME]  # no temporary left


def test_staging_names_round_trip():
    name = sd.staging_name(1700000005, 1700000001.7, "beef")
    assert name.startswith(sd.STAGING_PREFIX) and not name.isdigit()
    assert sd.parse_staging_name(name) == (1700000005, 1700000001)
    assert sd.parse_staging_name(".staging-x-1-2") is None and sd.parse_staging_name("123") is None
