"""`imdb-pipeline hub build / export-gru`: real TF, real SavedModels, modules loaded with hub.KerasLayer."""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from models.gru import build_gru_model
from pipeline import hub_commands
from models.errors import UserError

VOCAB = ["the", "movie", "great", "awful", "don't"]
OOV = 3
DIM = 4


def parser():
    root = argparse.ArgumentParser(prog="imdb-pipeline")
    hub_commands.add_commands(root.add_subparsers(dest="command", required=True))
    return root


def run_cli(argv):
    args = parser().parse_args(argv)
    return args.handler(args)


def embed(module_dir, texts):
    return hub.KerasLayer(str(module_dir))(tf.constant(texts)).numpy()


def test_hub_build(tmp_path, capsys):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("the 1 0 0\ngood 0 2 0\nbad 0 0 -3\nskipped 9 9 9\n", encoding="utf-8")
    out = tmp_path / "module"
    assert run_cli(["hub", "build", "--vectors", str(vectors), "--out", str(out),
                    "--top-n", "3", "--oov-buckets", "2"]) == 0
    printed = capsys.readouterr().out
    assert "3 dimensions, 3 words + 2 OOV buckets" in printed
    assert f"--model hub --hub-handle {out.resolve()}" in printed
    result = embed(out, ["good", "bad", "skipped"])
    np.testing.assert_allclose(result[0], [0, 2, 0])
    np.testing.assert_allclose(result[1], [0, 0, -3])
    assert not np.allclose(result[2], [9, 9, 9])  # beyond --top-n: an OOV bucket


def test_hub_digest_pins_the_module_content(tmp_path, capsys):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 0 2 0\nbad 0 0 -3\n", encoding="utf-8")
    out = tmp_path / "module"
    run_cli(["hub", "build", "--vectors", str(vectors), "--out", str(out), "--oov-buckets", "2"])
    capsys.readouterr()
    assert run_cli(["hub", "digest", str(out)]) == 0
    first = capsys.readouterr().out.strip()
    assert len(first) == 64 and int(first, 16) >= 0
    (out / "assets" / "vocab.txt").write_text("good\nevil\n", encoding="utf-8")  # same names, other bytes
    run_cli(["hub", "digest", str(out)])
    assert capsys.readouterr().out.strip() != first
    with pytest.raises(UserError, match="not a module folder"):
        run_cli(["hub", "digest", str(tmp_path / "nope")])


def test_hub_build_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run_cli(["hub", "build", "--vectors", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "m")])
    with pytest.raises(SystemExit):  # argparse rejects it before anything runs
        parser().parse_args(["hub", "build", "--vectors", "v", "--out", "o", "--top-n", "0"])


class _ExportedGru(tf.Module):
    """What export-gru reads from a pushed model: Keras' embedding variable, an Adam slot with the
    same name inside (not trainable), another layer's weights and tf.Transform's vocabulary asset."""

    def __init__(self, embeddings, vocab_file, slot_value):
        super().__init__()
        self.embeddings = embeddings
        with tf.name_scope("Adam/m"):
            self.slot = tf.Variable(slot_value, trainable=False, name="embedding/embeddings")
        self.other = tf.Variable(tf.ones([2, 2]), name="probability/kernel")
        self.vocabulary = tf.saved_model.Asset(vocab_file)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
    def rows(self, ids):
        return tf.gather(self.embeddings, ids)


def save_gru(path, vocab, seed):
    """A tiny real masked GRU's embedding, saved the way the pipeline's model carries it."""
    tf.keras.utils.set_random_seed(seed)
    model = build_gru_model("seed", 1 + len(vocab) + OOV, embedding_dim=DIM, units=2)
    embeddings = model.get_layer("embedding").embeddings
    assert embeddings.name == "embedding/embeddings:0"
    src = path.parent / f"src-{path.name}" / "vocabulary"
    src.parent.mkdir(parents=True)
    src.write_text("".join(w + "\n" for w in vocab), encoding="utf-8")
    slot = np.full(embeddings.shape, 7.0, dtype=np.float32)
    tf.saved_model.save(_ExportedGru(embeddings, str(src), slot), str(path))
    assert (path / "assets" / "vocabulary").is_file()
    return embeddings.numpy()


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    """serving/<version>/ as the Pusher writes it: an older model and the newest one."""
    root = tmp_path_factory.mktemp("serving")
    save_gru(root / "100", ["old", "words"], seed=1)
    matrix = save_gru(root / "200", VOCAB, seed=2)
    return root, matrix


def test_export_gru_round_trip(serving, tmp_path):
    root, matrix = serving
    module = hub_commands.export_gru_embedding(str(root / "200"), str(tmp_path / "module"))
    vectors = embed(module, VOCAB + ["zzzunknown"])
    for i, word in enumerate(VOCAB):
        np.testing.assert_allclose(vectors[i], matrix[i + 1], rtol=1e-6)  # word i -> row i + 1
    # An unknown word lands in the OOV bucket tf.Transform would give it (Fingerprint64 mod OOV).
    bucket = int(tf.strings.to_hash_bucket_fast(["zzzunknown"], OOV)[0])
    np.testing.assert_allclose(vectors[-1], matrix[1 + len(VOCAB) + bucket], rtol=1e-6)


def test_export_gru_cli_uses_newest_version(serving, tmp_path, capsys):
    root, matrix = serving
    out = tmp_path / "module"
    assert run_cli(["hub", "export-gru", "--serving-dir", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(root / "200") in printed and f"{len(VOCAB)} words + {OOV} OOV buckets" in printed
    assert "--model hub --hub-handle" in printed
    np.testing.assert_allclose(embed(out, ["great"])[0], matrix[VOCAB.index("great") + 1], rtol=1e-6)


def test_export_gru_workdir_and_model_dir(serving, tmp_path):
    root, matrix = serving
    workdir = tmp_path / "wd"
    (workdir).mkdir()
    os.symlink(root, workdir / "serving")
    assert run_cli(["hub", "export-gru", "--workdir", str(workdir), "--out", str(tmp_path / "a")]) == 0
    assert run_cli(["hub", "export-gru", "--model-dir", str(root / "100"), "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "assets" / "vocab.txt").read_text(encoding="utf-8") == "old\nwords\n"
    with pytest.raises(SystemExit):
        parser().parse_args(["hub", "export-gru", "--workdir", "w", "--model-dir", "m", "--out", "o"])


def test_export_gru_user_errors(tmp_path):
    with pytest.raises(UserError, match="No serving folder"):
        run_cli(["hub", "export-gru", "--workdir", str(tmp_path / "none"), "--out", str(tmp_path / "m")])
    with pytest.raises(UserError, match="not a SavedModel folder"):
        hub_commands.export_gru_embedding(str(tmp_path), str(tmp_path / "m"))

    no_vocab = tmp_path / "no_vocab"
    module = tf.Module()
    module.v = tf.Variable(tf.zeros([4, 2]), name="embedding/embeddings")
    tf.saved_model.save(module, str(no_vocab))
    with pytest.raises(UserError, match="no assets/vocabulary"):
        hub_commands.export_gru_embedding(str(no_vocab), str(tmp_path / "m"))

    src = tmp_path / "src" / "vocabulary"
    src.parent.mkdir()
    src.write_text("a\nb\n", encoding="utf-8")
    hub_model = tf.Module()  # e.g. a --model hub run: no embedding/embeddings variable
    hub_model.w = tf.Variable(tf.zeros([4, 2]), name="dense/kernel")
    hub_model.vocabulary = tf.saved_model.Asset(str(src))
    tf.saved_model.save(hub_model, str(tmp_path / "hub_model"))
    with pytest.raises(UserError, match="needs a model trained with --model gru"):
        hub_commands.export_gru_embedding(str(tmp_path / "hub_model"), str(tmp_path / "m"))

    small = tf.Module()  # 2 rows cannot hold padding + 2 words
    small.e = tf.Variable(tf.zeros([2, 2]), name="embedding/embeddings")
    small.vocabulary = tf.saved_model.Asset(str(src))
    tf.saved_model.save(small, str(tmp_path / "small"))
    with pytest.raises(UserError, match="does not belong"):
        hub_commands.export_gru_embedding(str(tmp_path / "small"), str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()
