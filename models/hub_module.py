"""Offline TF2 SavedModel text-embedding modules that load like Google's ``nnlm-en-dim50``.

The pipeline's hub model uses ``hub.KerasLayer(path)``; these modules let it run without network
access, from pretrained GloVe/word2vec text vectors or from the embedding table the masked GRU
learned. A module maps a 1-D ``tf.string`` batch ``[batch]`` to ``[batch, dim]`` float32:

* tokenisation in-graph with the project's one clean-up (``models/text.py``), the same as
  Transform's, so the GRU's trained vocabulary and a module agree on what a word is;
* known words look up their row; unknown words hash into ``num_oov_buckets`` extra rows with
  ``tf.lookup.StaticVocabularyTable`` (Fingerprint64 mod buckets, after the vocabulary), the same
  lookup ``tft.compute_and_apply_vocabulary`` builds, so a trained table's OOV rows line up;
* sqrt-n combiner (sum of token vectors / sqrt(token count), as nnlm does); no tokens -> zeros;
* bag of words: word order does not matter.

The embedding table is a trainable ``tf.Variable`` exposed as ``variables`` /
``trainable_variables`` (and an empty ``regularization_losses``) on the saved object, which is
what ``hub.KerasLayer(..., trainable=True)`` reads to fine-tune it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
from typing import Iterator, Sequence, Union

import numpy as np
import tensorflow as tf

from models import text
from models.errors import UserError

VOCAB_ASSET_NAME = "vocab.txt"
MODULE_INFO_NAME = "module_info.json"
# OOV rows of a module built from pretrained vectors: N(0, (OOV_INIT_SCALE * std of the known
# vectors)^2). Small, so a typo or a rare name cannot outweigh the known words in the sum; non-zero,
# so distinct unknown words stay distinguishable even when the module is frozen.
OOV_INIT_SCALE = 0.1

PathLike = Union[str, os.PathLike]  # a local path or a URI (gs://, s3://); os.PathLike: callers' pathlib.Path


def _text_lines(path: str) -> Iterator[str]:
    """Lines of a file at any URI tf.io.gfile knows (local, gs://, s3://), gunzipped for .gz."""
    with tf.io.gfile.GFile(path, "rb") as raw:
        for line in gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw:
            yield line.decode("utf-8", errors="replace")


def read_word_vectors(path: PathLike, top_n: int | None = None) -> tuple[list[str], np.ndarray]:
    """Reads GloVe/word2vec TEXT vectors (``word v1 ... vD``; optional ``N D`` header; ``.gz`` ok).

    Reads at most ``top_n`` vector lines (the files are frequency-sorted, so that keeps the most
    common words). Words are lower-cased like the tokeniser does; a word the tokeniser would not
    produce as one token (punctuation, digits, ``u.s.``) is dropped, and a repeated word keeps its
    first (most frequent) vector. Raises UserError for a missing file, ragged or non-numeric
    lines (naming the line number) or a file without usable vectors.
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise UserError(f"Word-vector file {path} does not exist.")
    if top_n is not None and top_n < 1:
        raise UserError(f"top_n must be a positive number of lines, got {top_n}.")
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim: int | None = None
    n_read = 0
    try:
        for line_no, line in enumerate(_text_lines(path), start=1):
            fields = line.rstrip().split(" ")
            if fields == [""]:
                continue
            if line_no == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                dim = int(fields[1])  # word2vec header "N D"; the vectors must match D.
                continue
            if top_n is not None and n_read >= top_n:
                break
            n_read += 1
            if dim is None:
                dim = len(fields) - 1
                if dim == 0:
                    raise UserError(f"{path} line {line_no} has a word but no vector values.")
            if len(fields) - 1 != dim:
                raise UserError(
                    f"{path} line {line_no} has {len(fields) - 1} values where the vectors "
                    f"have {dim}; the file is ragged or not space-separated text vectors."
                )
            word = fields[0].lower()
            if text.tokenize_py(word) != [word] or word in seen:
                continue
            try:
                row = np.asarray(fields[1:], dtype=np.float32)
            except ValueError:
                raise UserError(
                    f"{path} line {line_no} has a value that is not a number."
                ) from None
            seen.add(word)
            words.append(word)
            rows.append(row)
    except (OSError, EOFError, gzip.BadGzipFile, tf.errors.OpError) as err:
        raise UserError(f"Could not read word vectors from {path}: {err}.") from None
    if not words:
        raise UserError(f"{path} holds no word vectors for words the tokeniser can produce.")
    return words, np.stack(rows)


class _TextEmbedding(tf.train.Checkpoint):
    """The saved object: a vocabulary table, a trainable table of vectors and the call function."""

    def __init__(self, vocab_file: str, vocab_size: int, table: np.ndarray, num_oov_buckets: int):
        super().__init__()
        init = tf.lookup.TextFileInitializer(
            vocab_file,
            key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            vocab_size=vocab_size,
        )
        if num_oov_buckets > 0:
            self._table = tf.lookup.StaticVocabularyTable(init, num_oov_buckets=num_oov_buckets)
        else:  # tft's default_value=-1 for no OOV buckets: unknown words are simply left out.
            self._table = tf.lookup.StaticHashTable(init, default_value=-1)
        self.embeddings = tf.Variable(table, trainable=True, name="embeddings")
        # hub.KerasLayer reads exactly these attributes off the restored object.
        self.variables = [self.embeddings]
        self.trainable_variables = [self.embeddings]
        self.regularization_losses = []

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences: tf.Tensor) -> tf.Tensor:
        ids = self._table.lookup(text.tokenize(sentences))
        ids = tf.ragged.boolean_mask(ids, ids >= 0)
        vectors = tf.gather(self.embeddings, ids)  # ragged [batch, (tokens), dim]
        counts = tf.cast(ids.row_lengths(), tf.float32)
        # sqrt-n; max(count, 1) keeps a text without tokens at an exact zero vector, not NaN.
        return tf.reduce_sum(vectors, axis=1) / tf.sqrt(tf.maximum(counts, 1.0))[:, None]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
    def serve(self, sentences: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"default": self.__call__(sentences)}


def _check_words(words: Sequence[str]) -> list[str]:
    words = list(words)
    if not words:
        raise UserError("A text-embedding module needs at least one vocabulary word.")
    bad = next((w for w in words if not w or re.search(r"\s", w)), None)
    if bad is not None:
        raise UserError(
            f"Vocabulary word {bad!r} is empty or holds whitespace; it cannot be looked up."
        )
    if len(set(words)) != len(words):
        dup = next(w for i, w in enumerate(words) if w in words[:i])
        raise UserError(
            f"Vocabulary word {dup!r} appears more than once; each word needs one row."
        )
    return words


def _is_local(path: str) -> bool:
    return "://" not in path


def _upload_tree(local_dir: str, target: str) -> None:
    """Copies a finished local folder to `target` (any tf.io.gfile URI), file by file.

    module_info.json goes first, so an interrupted upload is still recognised as an earlier module
    and a rebuild may replace it; saved_model.pb goes last, so nothing looks loadable before the
    variables and assets are all there."""
    files = sorted((os.path.relpath(os.path.join(root, name), local_dir)
                    for root, _, names in tf.io.gfile.walk(local_dir) for name in names),
                   key=lambda rel: (rel != MODULE_INFO_NAME, rel == "saved_model.pb", rel))
    tf.io.gfile.makedirs(target)
    for rel in files:
        tf.io.gfile.makedirs(os.path.dirname(os.path.join(target, rel)))
        tf.io.gfile.copy(os.path.join(local_dir, rel), os.path.join(target, rel), overwrite=True)


def _save_module(
    words: Sequence[str],
    table: np.ndarray,
    num_oov_buckets: int,
    export_dir: PathLike,
    info: dict,
) -> PathLike:
    """Writes the SavedModel to `export_dir` (a local path or a gs://, s3:// URI), built completely
    in a scratch folder first, so a failed build leaves no half module and an earlier one untouched.

    Local `export_dir`: the scratch folder is a sibling (same filesystem), and the finished module
    replaces the earlier one by a directory rename (the earlier one is renamed aside just before).
    A URI: object stores have no directory rename (gs:// and s3:// "rename" copies each object),
    so the module is built in a local temporary folder and then uploaded file by file after the
    earlier module is removed; a reader during the upload, or a crash in it, can see a partial
    module (no saved_model.pb yet, see `_upload_tree`). Returns `export_dir` as given.
    """
    target = os.fspath(export_dir)
    target = target.rstrip("/") or target
    if tf.io.gfile.exists(target) and (not tf.io.gfile.isdir(target) or (
        tf.io.gfile.listdir(target) and not tf.io.gfile.exists(os.path.join(target, MODULE_INFO_NAME))
    )):
        raise UserError(
            f"{target} exists and is not an earlier module; choose an empty directory."
        )
    local = _is_local(target)
    parent = os.path.dirname(target)
    if parent:
        tf.io.gfile.makedirs(parent)
    with tempfile.TemporaryDirectory(prefix=".hub_module-", dir=(parent or ".") if local else None) as scratch:
        vocab_file = os.path.join(scratch, "src", VOCAB_ASSET_NAME)  # saving copies it into assets/
        tf.io.gfile.makedirs(os.path.dirname(vocab_file))
        with tf.io.gfile.GFile(vocab_file, "w") as handle:
            handle.write("".join(w + "\n" for w in words))
        module = _TextEmbedding(vocab_file, len(words), table, num_oov_buckets)
        out = os.path.join(scratch, "module")
        tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
        info = {
            "dim": int(table.shape[1]),
            "vocab_size": len(words),
            "num_oov_buckets": int(num_oov_buckets),
            "combiner": "sqrtn",
            "input": "1-D tf.string batch [batch]",
            "output": "[batch, dim] float32",
            **info,
        }
        with tf.io.gfile.GFile(os.path.join(out, MODULE_INFO_NAME), "w") as handle:
            handle.write(json.dumps(info, indent=2) + "\n")
        if local:
            # The earlier module is renamed aside into the scratch folder (deleted with it), so the
            # folder is missing only between two renames, and comes back if the second one fails.
            aside = None
            if tf.io.gfile.exists(target):
                aside = os.path.join(scratch, "earlier")
                tf.io.gfile.rename(target, aside)
            try:
                tf.io.gfile.rename(out, target)
            except BaseException:
                if aside is not None:
                    tf.io.gfile.rename(aside, target)
                raise
        else:
            if tf.io.gfile.exists(target):
                tf.io.gfile.rmtree(target)
            _upload_tree(out, target)
    return export_dir


def build_module(
    words: Sequence[str],
    vectors: np.ndarray,
    export_dir: PathLike,
    num_oov_buckets: int,
    seed: int = 0,
    *,
    source: str = "in-memory vectors",
) -> PathLike:
    """Saves a module for pretrained vectors (row i = ``words[i]``) plus seeded random OOV rows.

    Writes ``export_dir/assets/vocab.txt`` (the table's keys, one a line) and
    ``export_dir/module_info.json``; returns ``export_dir``.
    """
    words = _check_words(words)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words) or vectors.shape[1] < 1:
        raise UserError(
            f"Expected one vector per word ({len(words)} x dim), "
            f"got an array of shape {vectors.shape}."
        )
    if num_oov_buckets < 0:
        raise UserError(f"num_oov_buckets must be 0 or more, got {num_oov_buckets}.")
    scale = OOV_INIT_SCALE * float(vectors.std()) or OOV_INIT_SCALE
    oov = np.random.default_rng(seed).normal(0.0, scale, (num_oov_buckets, vectors.shape[1]))
    table = np.concatenate([vectors, oov.astype(np.float32)])
    info = {"source": source, "oov_init": f"normal(0, {scale:.6g}), seed {seed}"}
    return _save_module(words, table, num_oov_buckets, export_dir, info)


def build_module_from_word_vectors(
    path: PathLike,
    export_dir: PathLike,
    num_oov_buckets: int,
    top_n: int | None = None,
) -> PathLike:
    """Reads a GloVe/word2vec text file and saves it as a module (see ``read_word_vectors``)."""
    words, vectors = read_word_vectors(path, top_n=top_n)
    source = f"{os.path.basename(str(path))}" + (f" (top {top_n} lines)" if top_n else "")
    return build_module(words, vectors, export_dir, num_oov_buckets=num_oov_buckets, source=source)


def build_module_from_trained_embedding(
    embedding_matrix: np.ndarray,
    vocabulary: Sequence[str],
    export_dir: PathLike,
    num_oov_buckets: int,
    padding_row: bool = True,
) -> PathLike:
    """Saves the masked GRU's learned table as a module, OOV rows included.

    The GRU's ids are tf.Transform's vocabulary ids shifted by one (``padding_row``): row 0 is
    padding, row i+1 is ``vocabulary[i]``, rows V+1..V+OOV the OOV buckets. Dropping the padding
    row gives the module's own layout, and its StaticVocabularyTable hashes unknown words to the
    same buckets tf.Transform did, so the trained OOV rows are reused as they were learned.
    """
    vocabulary = _check_words(vocabulary)
    matrix = np.asarray(embedding_matrix, dtype=np.float32)
    if num_oov_buckets < 0:
        raise UserError(f"num_oov_buckets must be 0 or more, got {num_oov_buckets}.")
    offset = 1 if padding_row else 0
    expected = offset + len(vocabulary) + num_oov_buckets
    if matrix.ndim != 2 or matrix.shape[0] != expected or matrix.shape[1] < 1:
        raise UserError(
            f"The embedding matrix has shape {matrix.shape}, but {offset} padding + "
            f"{len(vocabulary)} words + {num_oov_buckets} OOV buckets need {expected} rows."
        )
    info = {
        "source": "trained embedding",
        "oov_init": "trained rows",
        "padding_row_dropped": padding_row,
    }
    return _save_module(vocabulary, matrix[offset:], num_oov_buckets, export_dir, info)
