"""`imdb-pipeline hub ...`: build offline TF Hub text-embedding modules for `--model hub`.

* `hub build --vectors FILE --out DIR`: a module from GloVe/word2vec text vectors;
* `hub export-gru --out DIR`: a module from the embedding the masked GRU learned, read from a
  pushed model (the newest version under the serving folder, or one SavedModel folder).

Either module is then used with `imdb-pipeline run --model hub --hub-handle DIR`. TensorFlow is
imported only when a command runs, so building the CLI parser stays fast.
"""
from __future__ import annotations

import argparse
import json
import os
import time

from models.features import VOCABULARY_NAME
from models.errors import UserError
from pipeline.configs import PipelineConfig

EMBEDDING_VARIABLE = "embedding/embeddings"  # the Keras name of models.gru's Embedding table
VOCABULARY_ASSET = VOCABULARY_NAME  # tf.Transform's vocabulary file, copied into the model's assets/
DEFAULT_OOV_BUCKETS = PipelineConfig.defaults()["oov_buckets"]  # a module's OOV rows line up with Transform's


def _int_at_least(minimum: int, wording: str):
    """argparse type: a whole number >= minimum, with a readable error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive number")
_non_negative_int = _int_at_least(0, "0 or more")


def add_commands(subparsers) -> argparse.ArgumentParser:
    """Adds the `hub` command group to the CLI's subparsers; each leaf sets `handler=fn(args) -> int`."""
    hub = subparsers.add_parser("hub", help="offline TF Hub text-embedding modules for --model hub")
    commands = hub.add_subparsers(dest="hub_command", required=True)

    build = commands.add_parser("build", help="build a module from GloVe/word2vec text vectors")
    build.add_argument("--vectors", required=True, metavar="FILE",
                       help="text vectors, one 'word v1 ... vD' a line (optional word2vec header; .gz ok)")
    build.add_argument("--out", required=True, metavar="DIR", help="module folder to write")
    build.add_argument("--top-n", type=_positive_int, default=None, metavar="N",
                       help="read only the first N vector lines (the files are sorted by frequency)")
    build.add_argument("--oov-buckets", type=_non_negative_int, default=DEFAULT_OOV_BUCKETS, metavar="N",
                       help=f"hash buckets for unknown words (default {DEFAULT_OOV_BUCKETS})")
    build.set_defaults(handler=command_hub_build)

    export = commands.add_parser("export-gru", help="turn a pushed masked-GRU model's learned embedding "
                                                    "into a module")
    where = export.add_mutually_exclusive_group()
    where.add_argument("--workdir", help="workdir of a run (uses the newest model in <workdir>/serving; "
                                         "default ./workdir)")
    where.add_argument("--serving-dir", help="a TF Serving model folder holding <version>/ subfolders")
    where.add_argument("--model-dir", help="one SavedModel folder (holding saved_model.pb)")
    export.add_argument("--out", required=True, metavar="DIR", help="module folder to write")
    export.set_defaults(handler=command_hub_export_gru)

    digest = commands.add_parser("digest", help="print a module's content SHA-256, to pin it with run --hub-sha256")
    digest.add_argument("module", metavar="DIR", help="module folder (local or gs://, s3://)")
    digest.set_defaults(handler=command_hub_digest)
    return hub


def _usage_hint(module_dir: str) -> str:
    shown = module_dir if "://" in module_dir else os.path.abspath(module_dir)
    return f"use it with: imdb-pipeline run --model hub --hub-handle {shown}"


def _describe(module_dir: str, seconds: float) -> str:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from models.hub_module import MODULE_INFO_NAME  # pylint: disable=import-outside-toplevel

    with tf.io.gfile.GFile(os.path.join(module_dir, MODULE_INFO_NAME)) as handle:
        info = json.loads(handle.read())
    return (f"module written to {module_dir}: {info['dim']} dimensions, {info['vocab_size']:,} words "
            f"+ {info['num_oov_buckets']:,} OOV buckets, from {info['source']} ({seconds:.1f}s)")


def command_hub_build(args: argparse.Namespace) -> int:
    from models.hub_module import build_module_from_word_vectors  # pylint: disable=import-outside-toplevel

    started = time.time()
    module_dir = build_module_from_word_vectors(args.vectors, args.out, num_oov_buckets=args.oov_buckets,
                                                top_n=args.top_n)
    print(_describe(str(module_dir), time.time() - started))
    print(_usage_hint(str(module_dir)))
    return 0


def _read_vocabulary(path: str) -> list:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    with tf.io.gfile.GFile(path, "rb") as handle:  # same reading as models.trainer.vocabulary_words
        return [line.rstrip(b"\n").decode("utf-8", errors="replace") for line in handle]


def _embedding_variable(loaded, model_dir: str):
    """The GRU's embedding table among the restored variables (optimizer slots excluded)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    seen, found = set(), []
    for obj in tf.train.TrackableView(loaded).descendants():
        if isinstance(obj, tf.Variable) and id(obj) not in seen:
            seen.add(id(obj))
            name = obj.name.split(":")[0]
            # Adam's slots ("Adam/m/embedding/embeddings") contain the name too, but are not trainable.
            if EMBEDDING_VARIABLE in name and obj.trainable and obj.shape.rank == 2:
                found.append((name, obj))
    exact = [var for name, var in found if name == EMBEDDING_VARIABLE]
    if len(exact) == 1:
        return exact[0]
    if len(found) == 1:
        return found[0][1]
    if not found:
        raise UserError(f"The model in {model_dir} has no '{EMBEDDING_VARIABLE}' variable; export-gru needs a "
                        "model trained with --model gru.")
    raise UserError(f"The model in {model_dir} has several embedding tables "
                    f"({', '.join(name for name, _ in found)}); export-gru cannot tell which one to use.")


def export_gru_embedding(model_dir: str, out_dir: str) -> str:
    """Builds a text-embedding module at `out_dir` from the masked GRU SavedModel in `model_dir`.

    Reads the tf.Transform vocabulary from `<model_dir>/assets/vocabulary` (word i has id i, i.e.
    embedding row i + 1) and the `embedding/embeddings` variable; the rows after padding and the
    vocabulary are the OOV buckets. Returns the module folder.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from models.hub_module import build_module_from_trained_embedding  # pylint: disable=import-outside-toplevel

    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise UserError(f"{model_dir} is not a SavedModel folder (it has no saved_model.pb).")
    vocab_path = os.path.join(model_dir, "assets", VOCABULARY_ASSET)
    if not tf.io.gfile.exists(vocab_path):
        raise UserError(f"The model in {model_dir} has no assets/{VOCABULARY_ASSET} file; export-gru needs a "
                        "masked GRU exported by this pipeline (with its tf.Transform vocabulary).")
    vocabulary = _read_vocabulary(vocab_path)
    try:
        loaded = tf.saved_model.load(model_dir)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise UserError(f"Could not load the SavedModel in {model_dir}: {str(error).splitlines()[0]}") from None
    matrix = _embedding_variable(loaded, model_dir).numpy()
    oov_buckets = matrix.shape[0] - 1 - len(vocabulary)
    if oov_buckets < 0:
        raise UserError(f"The embedding in {model_dir} has {matrix.shape[0]} rows, fewer than padding + the "
                        f"{len(vocabulary)} vocabulary words; the vocabulary asset does not belong to it.")
    return str(build_module_from_trained_embedding(matrix, vocabulary, out_dir, num_oov_buckets=oov_buckets))


def command_hub_export_gru(args: argparse.Namespace) -> int:
    from pipeline.predict import newest_model_dir  # pylint: disable=import-outside-toplevel

    if args.model_dir:
        model_dir = args.model_dir
    else:
        model_dir = newest_model_dir(args.serving_dir or os.path.join(args.workdir or "workdir", "serving"))
    started = time.time()
    module_dir = export_gru_embedding(model_dir, args.out)
    print(f"exported the learned embedding of {model_dir}")
    print(_describe(str(module_dir), time.time() - started))
    print(_usage_hint(str(module_dir)))
    return 0


def command_hub_digest(args: argparse.Namespace) -> int:
    from models.digest import content_digest  # pylint: disable=import-outside-toplevel  (TensorFlow)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if not tf.io.gfile.isdir(args.module):
        raise UserError(f"{args.module} is not a module folder.")
    print(content_digest(args.module))
    return 0
