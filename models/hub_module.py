"""Offline TF2 SavedModel text-embedding modules that load like Google's ``nnlm-en-dim50``.

The pipeline's hub model uses ``hub.KerasLayer(path)``; these modules let it run without network
access, from pretrained GloVe/word2vec text vectors or from the embedding table the masked GRU
learned. A module maps a 1-D ``tf.string`` batch ``[batch]`` to ``[batch, dim]`` float32:

* tokenisation in-graph, matching the project's clean-up: lower-case, ``<br />`` tags to a space,
  every character that is not ``a-z`` or an apostrophe to a space, split on whitespace;
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
import re
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from models.errors import UserError

# The project's clean-up, in the two dialects it is needed in: RE2 in the graph, `re` in Python.
BR_TAG_PATTERN = r"<br\s*/?>"
NON_WORD_PATTERN = r"[^a-z']"
VOCAB_ASSET_NAME = "vocab.txt"
MODULE_INFO_NAME = "module_info.json"
DEFAULT_NUM_OOV_BUCKETS = 1000
# OOV rows of a module built from pretrained vectors: N(0, (OOV_INIT_SCALE * std of the known
# vectors)^2). Small, so a typo or a rare name cannot outweigh the known words in the sum; non-zero,
# so distinct unknown words stay distinguishable even when the module is frozen.
OOV_INIT_SCALE = 0.1

_BR_RE = re.compile(BR_TAG_PATTERN)
_NON_WORD_RE = re.compile(NON_WORD_PATTERN)


def clean_tokens(text: str) -> list[str]:
    """Python twin of the in-graph tokeniser, used to keep only words a module can ever see."""
    return _NON_WORD_RE.sub(" ", _BR_RE.sub(" ", _ascii_lower(text))).split()


def _ascii_lower(text: str) -> str:
    # tf.strings.lower only lower-cases ASCII; mirror that so e.g. the Kelvin sign stays foreign.
    return "".join(c.lower() if c.isascii() else c for c in text)


def tokenize(sentences: tf.Tensor) -> tf.RaggedTensor:
    """In-graph tokeniser: ``[batch]`` strings -> ragged ``[batch, (tokens)]`` words."""
    text = tf.strings.lower(sentences)
    text = tf.strings.regex_replace(text, BR_TAG_PATTERN, " ")
    text = tf.strings.regex_replace(text, NON_WORD_PATTERN, " ")
    return tf.strings.split(text)


def read_word_vectors(path: str | Path, top_n: int | None = None) -> tuple[list[str], np.ndarray]:
    """Reads GloVe/word2vec TEXT vectors (``word v1 ... vD``; optional ``N D`` header; ``.gz`` ok).

    Reads at most ``top_n`` vector lines (the files are frequency-sorted, so that keeps the most
    common words). Words are lower-cased like the tokeniser does; a word the tokeniser would not
    produce as one token (punctuation, digits, ``u.s.``) is dropped, and a repeated word keeps its
    first (most frequent) vector. Raises UserError for a missing file, ragged or non-numeric
    lines (naming the line number) or a file without usable vectors.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Word-vector file {path} does not exist.")
    if top_n is not None and top_n < 1:
        raise UserError(f"top_n must be a positive number of lines, got {top_n}.")
    opener = gzip.open if path.suffix == ".gz" else open
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim: int | None = None
    n_read = 0
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as lines:
            for line_no, line in enumerate(lines, start=1):
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
                word = _ascii_lower(fields[0])
                if clean_tokens(word) != [word] or word in seen:
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
    except (OSError, EOFError, gzip.BadGzipFile) as err:
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
        ids = self._table.lookup(tokenize(sentences))
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


def _save_module(
    words: Sequence[str],
    table: np.ndarray,
    num_oov_buckets: int,
    export_dir: str | Path,
    info: dict,
) -> Path:
    """Writes the SavedModel via a scratch directory, so a failed build leaves no half module."""
    export_dir = Path(export_dir)
    if export_dir.exists() and (not export_dir.is_dir() or (
        any(export_dir.iterdir()) and not (export_dir / MODULE_INFO_NAME).exists()
    )):
        raise UserError(
            f"{export_dir} exists and is not an earlier module; choose an empty directory."
        )
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".hub_module-", dir=export_dir.parent) as scratch:
        vocab_file = Path(scratch) / "src" / VOCAB_ASSET_NAME  # saving copies it into assets/
        vocab_file.parent.mkdir()
        vocab_file.write_text("".join(w + "\n" for w in words), encoding="utf-8")
        module = _TextEmbedding(str(vocab_file), len(words), table, num_oov_buckets)
        out = Path(scratch) / "module"
        tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
        info = {
            "dim": int(table.shape[1]),
            "vocab_size": len(words),
            "num_oov_buckets": int(num_oov_buckets),
            "combiner": "sqrtn",
            "input": "1-D tf.string batch [batch]",
            "output": "[batch, dim] float32",
            **info,
        }
        (out / MODULE_INFO_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if export_dir.exists():
            shutil.rmtree(export_dir)
        shutil.move(str(out), str(export_dir))
    return export_dir


def build_module(
    words: Sequence[str],
    vectors: np.ndarray,
    export_dir: str | Path,
    num_oov_buckets: int = DEFAULT_NUM_OOV_BUCKETS,
    seed: int = 0,
    *,
    source: str = "in-memory vectors",
) -> Path:
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
    path: str | Path,
    export_dir: str | Path,
    top_n: int | None = None,
    num_oov_buckets: int = DEFAULT_NUM_OOV_BUCKETS,
) -> Path:
    """Reads a GloVe/word2vec text file and saves it as a module (see ``read_word_vectors``)."""
    words, vectors = read_word_vectors(path, top_n=top_n)
    source = f"{Path(path).name}" + (f" (top {top_n} lines)" if top_n else "")
    return build_module(words, vectors, export_dir, num_oov_buckets=num_oov_buckets, source=source)


def build_module_from_trained_embedding(
    embedding_matrix: np.ndarray,
    vocabulary: Sequence[str],
    export_dir: str | Path,
    num_oov_buckets: int,
    padding_row: bool = True,
) -> Path:
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
