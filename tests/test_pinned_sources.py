"""Outside inputs are pinned by content: a changed vector file or Hub module at the same path
changes the Trainer's cache key, and --hub-sha256 refuses a module whose content moved."""
import dataclasses

import pytest

from models import trainer
from models.digest import content_digest
from models.errors import UserError
from models.hub_module import build_module
from models.settings import TrainerSettings
from pipeline.configs import PipelineConfig
from pipeline.pipeline import trainer_settings


def test_the_trainer_cache_key_follows_the_vectors_content_not_their_name(tmp_path):
    vectors = tmp_path / "glove.txt"
    vectors.write_text("good 0.1 0.2\nbad -0.1 -0.2\n")
    config = PipelineConfig(pretrained_embeddings=str(vectors))
    first = trainer_settings(config)["sources_digest"]
    assert trainer_settings(config)["sources_digest"] == first
    vectors.write_text("good 0.9 0.2\nbad -0.1 -0.2\n")  # same path, other vectors
    assert trainer_settings(config)["sources_digest"] != first


def test_trainer_settings_carry_every_field_and_no_defaults_of_their_own():
    settings = trainer_settings(PipelineConfig(epochs=7))
    assert set(settings) == {field.name for field in dataclasses.fields(TrainerSettings)}
    assert settings["epochs"] == 7 and settings["batch_size"] == PipelineConfig.defaults()["batch_size"]


def test_a_pinned_hub_module_must_have_the_pinned_content(tmp_path):
    import numpy as np

    module = build_module(["good", "bad"], np.eye(2, dtype="float32"), tmp_path / "module", num_oov_buckets=1)
    pinned = content_digest(str(module))
    values = {**trainer_settings(PipelineConfig(model="hub", hub_handle=str(module), hub_sha256=pinned))}
    settings = TrainerSettings(**values)
    assert trainer._pinned_hub_handle(settings) == str(module)  # pylint: disable=protected-access
    (module / "assets" / "vocab.txt").write_text("good\nevil\n")
    with pytest.raises(UserError, match=f"not the pinned {pinned}"):
        trainer._pinned_hub_handle(settings)  # pylint: disable=protected-access


def test_a_malformed_pin_is_refused_by_the_config():
    with pytest.raises(UserError, match="hub_sha256 must be 64"):
        PipelineConfig(hub_sha256="abc")
