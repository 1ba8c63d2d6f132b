"""Pruning a SavedModel's function library: what a trained Keras GRU leaves behind goes, what the
signatures call stays, and the model scores exactly as before."""
import numpy as np
import tensorflow as tf

from models import features
from models.function_library import SAVED_MODEL_FILE, prune_unreachable_functions, reachable_functions
from models.gru import build_gru_model
from tensorflow.core.protobuf import fingerprint_pb2, saved_model_pb2
from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting  # pylint: disable=no-name-in-module


def _library(export_dir):
    saved_model = saved_model_pb2.SavedModel.FromString((export_dir / SAVED_MODEL_FILE).read_bytes())
    return saved_model, {function.signature.name for function in saved_model.meta_graphs[0].graph_def.library.function}


def _trained_export(export_dir):
    """A GRU model fitted for a step, so that training's functions sit in the eager context, then
    saved as the exporter saves it (no layer traces, a signature on token ids)."""
    tf.keras.utils.set_random_seed(4)
    model = build_gru_model("pooled_bigru", vocab_rows=30, embedding_dim=4, units=3)
    ids = np.random.default_rng(0).integers(1, 30, size=(8, 12))
    model.fit({features.TOKEN_IDS: ids}, np.arange(8) % 2, epochs=1, verbose=0)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64)])
    def score(token_ids):
        return {features.PROBABILITY: model({features.TOKEN_IDS: token_ids}, training=False)}

    model.save(str(export_dir), save_format="tf", save_traces=False,
               signatures={"serving_default": score.get_concrete_function()})
    return ids


def test_pruning_drops_training_functions_and_keeps_the_scores(tmp_path):
    export_dir = tmp_path / "model"
    ids = _trained_export(export_dir)
    before_scores = tf.saved_model.load(str(export_dir)).signatures["serving_default"](
        tf.constant(ids))[features.PROBABILITY].numpy()
    saved_model, before = _library(export_dir)
    assert any("backward" in name for name in before)  # what training leaves in the library
    assert reachable_functions(saved_model) < before

    kept, total = prune_unreachable_functions(str(export_dir))

    saved_model, after = _library(export_dir)
    assert (kept, total) == (len(after), len(before)) and kept < total
    assert not any("backward" in name or "gpu_gru" in name for name in after)
    assert reachable_functions(saved_model) == after
    loaded = tf.saved_model.load(str(export_dir))
    np.testing.assert_array_equal(
        loaded.signatures["serving_default"](tf.constant(ids))[features.PROBABILITY].numpy(), before_scores)
    on_disk = fingerprint_pb2.FingerprintDef.FromString((export_dir / "fingerprint.pb").read_bytes())
    of_the_pruned_file = fingerprint_pb2.FingerprintDef.FromString(fingerprinting.CreateFingerprintDef(str(export_dir)))
    assert on_disk.saved_model_checksum == of_the_pruned_file.saved_model_checksum


def test_pruning_twice_changes_nothing(tmp_path):
    export_dir = tmp_path / "model"
    _trained_export(export_dir)
    prune_unreachable_functions(str(export_dir))
    content = (export_dir / SAVED_MODEL_FILE).read_bytes()
    kept, total = prune_unreachable_functions(str(export_dir))
    assert kept == total and (export_dir / SAVED_MODEL_FILE).read_bytes() == content
