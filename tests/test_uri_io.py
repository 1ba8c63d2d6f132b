"""Data, artifacts, the serving folder, word vectors and Hub modules are read and written only
through tf.io.gfile (or tfx.dsl.io.fileio, which wraps it) or Beam's FileSystems, so a gs://,
s3:// or local path behaves alike. The code under components/ and models/ is parsed (ast) and
every call that only works on this machine's disk (builtin open, pathlib, shutil, os.makedirs,
os.path.exists, glob.glob, np.load on a path, savefig to a path, ...) is reported as file:line,
unless ALLOWED names the function and why its paths are always local.

The second half runs the changed code on TensorFlow's in-memory filesystem (ram://), a URI that
is not a local path: what works there goes through gfile, as gs:// and s3:// would.
"""
from __future__ import annotations

import ast
import gzip
import json
import os
import textwrap
import uuid
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("components", "models")

# (file relative to the repository, function qualname) -> why its paths are always local.
ALLOWED: Dict[Tuple[str, str], str] = {
    ("components/serving_canary.py", "run_in_fresh_process"):
        "its own tempfile.mkdtemp work folder, shared with the child process it starts (request, "
        "process log, results); the model folder itself is passed to the child, which loads it with "
        "tf.saved_model.load",
    ("components/serving_canary.py", "_wait_for"):
        "polls for the child's answer files in run_in_fresh_process's local work folder",
    ("components/imdb_reader.py", "_entries"):
        "os.scandir only in the `not is_uri(folder)` branch, to see symbolic links without following "
        "them; URIs are listed with tf.io.gfile (object stores have no links)",
    ("components/imdb_reader.py", "read_review_file"):
        "os.path.islink / os.readlink only when `not is_uri(path)`, to reject a link unread; the "
        "review itself is read with tf.io.gfile",
}

# Calls that only reach this machine's disk (or mangle a URI), by their fully qualified name.
LOCAL_ONLY_CALLS = {
    "open", "io.open", "codecs.open", "os.open", "os.fdopen",
    "os.makedirs", "os.mkdir", "os.listdir", "os.scandir", "os.walk", "os.remove", "os.unlink",
    "os.rmdir", "os.removedirs", "os.rename", "os.renames", "os.replace", "os.stat", "os.lstat",
    "os.readlink", "os.symlink", "os.link", "os.chmod", "os.truncate",
    "os.path.exists", "os.path.lexists", "os.path.isdir", "os.path.isfile", "os.path.islink",
    "os.path.getsize", "os.path.getmtime", "os.path.getctime", "os.path.getatime", "os.path.samefile",
    "os.path.abspath", "os.path.realpath",  # gs://b/k -> /cwd/gs:/b/k
    "glob.glob", "glob.iglob",
}
LOCAL_ONLY_MODULES = ("shutil", "glob")  # any call into them; pathlib: any use of a name from it
# Fine on an in-memory buffer (io.BytesIO), local-only on a path.
BUFFER_OR_PATH_CALLS = {
    "numpy.load", "numpy.save", "numpy.savez", "numpy.savez_compressed", "numpy.loadtxt",
    "numpy.savetxt", "numpy.genfromtxt", "numpy.fromfile", "numpy.memmap",
}
BUFFER_OR_PATH_METHODS = {"savefig", "tofile"}   # matplotlib figures, numpy arrays
# pathlib.Path methods, caught also on a Path that came from elsewhere (an argument, a return value).
PATHLIB_METHODS = {"read_text", "write_text", "read_bytes", "write_bytes", "iterdir", "mkdir", "is_file", "is_dir"}
GFILE_PREFIXES = ("tensorflow.", "tfx.")  # tf.io.gfile.mkdir, fileio.mkdir, ... (after alias resolution)
BUFFERS = {"io.BytesIO", "io.StringIO"}


class Finding(NamedTuple):
    file: str
    line: int
    function: str
    call: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.call} in {self.function}"


class _Checker(ast.NodeVisitor):
    def __init__(self, file: str, tree: ast.AST):
        self.file = file
        self.findings: List[Finding] = []
        self.scope: List[str] = []
        self.buffers: List[set] = [set()]
        self.aliases: Dict[str, str] = {}
        for node in ast.walk(tree):  # one alias table per module, function-local imports included
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def _report(self, node: ast.AST, call: str) -> None:
        self.findings.append(Finding(self.file, node.lineno, ".".join(self.scope) or "<module>", call))

    def qualified(self, node: ast.AST):
        """'os.path.exists' for os.path.exists / `from os import path; path.exists` / ..., else None."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        base = self.aliases.get(node.id, node.id)
        return ".".join([base] + parts[::-1])

    def _is_buffer(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            return self.qualified(node.func) in BUFFERS
        return isinstance(node, ast.Name) and node.id in self.buffers[-1]

    def _scoped(self, node, name: str) -> None:
        self.scope.append(name)
        self.buffers.append(set())
        self.generic_visit(node)
        self.buffers.pop()
        self.scope.pop()

    def visit_FunctionDef(self, node):  # noqa: N802
        self._scoped(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):  # noqa: N802
        self._scoped(node, node.name)

    def visit_Import(self, node):  # noqa: N802
        for alias in node.names:
            if alias.name.split(".")[0] == "pathlib":
                self._report(node, f"import {alias.name}")

    def visit_ImportFrom(self, node):  # noqa: N802  (shutil and glob are reported where they are called)
        if node.module and not node.level and node.module.split(".")[0] == "pathlib":
            self._report(node, f"from {node.module} import {', '.join(a.name for a in node.names)}")

    def visit_Assign(self, node):  # noqa: N802
        if isinstance(node.value, ast.Call) and self.qualified(node.value.func) in BUFFERS:
            self.buffers[-1].update(t.id for t in node.targets if isinstance(t, ast.Name))
        self.generic_visit(node)

    def visit_Name(self, node):  # noqa: N802  (pathlib.Path used as a value: Path(...), isinstance(x, Path))
        name = self.aliases.get(node.id)
        if name and name.split(".")[0] == "pathlib":
            self._report(node, name)

    def visit_Call(self, node):  # noqa: N802
        name = self.qualified(node.func)
        first = node.args[0] if node.args else None
        if name in LOCAL_ONLY_CALLS or (name and name.split(".")[0] in LOCAL_ONLY_MODULES):
            self._report(node, f"{name}(...)")
        elif name in BUFFER_OR_PATH_CALLS and not (first is not None and self._is_buffer(first)):
            self._report(node, f"{name}(...) on a path")
        elif isinstance(node.func, ast.Attribute) and not (name or "").startswith(GFILE_PREFIXES):
            method = node.func.attr
            if method in BUFFER_OR_PATH_METHODS and not (first is not None and self._is_buffer(first)):
                self._report(node, f".{method}(...) on a path")
            elif method in PATHLIB_METHODS:
                self._report(node, f".{method}(...)")
        self.generic_visit(node)


def check_source(source: str, file: str = "<string>") -> List[Finding]:
    tree = ast.parse(source, filename=file)
    checker = _Checker(file, tree)
    checker.visit(tree)
    return sorted(set(checker.findings), key=lambda f: (f.file, f.line, f.call))


def scanned_files() -> List[Path]:
    return sorted(p for folder in SCANNED for p in (ROOT / folder).rglob("*.py"))


def all_findings() -> List[Finding]:
    return [finding for path in scanned_files()
            for finding in check_source(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())]


# ---------------------------------------------------------------------------------------------
# The rule, on the code.
# ---------------------------------------------------------------------------------------------

def test_components_and_models_use_gfile_for_every_path():
    assert len(scanned_files()) > 20, "components/ and models/ were not found"
    offending = [f for f in all_findings() if (f.file, f.function) not in ALLOWED]
    assert not offending, (
        "local-only file access where a gs:// or s3:// URI may arrive; use tf.io.gfile (GFile, makedirs, "
        "exists, listdir, walk, copy, rename, rmtree, glob) or tfx.dsl.io.fileio, or add the function to "
        "ALLOWED in tests/test_uri_io.py with the reason its paths are always local:\n  "
        + "\n  ".join(map(str, offending)))


def test_every_allow_list_entry_is_still_needed():
    used = {(f.file, f.function) for f in all_findings()}
    stale = sorted(set(ALLOWED) - used)
    assert not stale, f"ALLOWED names functions that no longer touch local paths; remove them: {stale}"
    assert all(reason.strip() for reason in ALLOWED.values())


# ---------------------------------------------------------------------------------------------
# The checker itself: it does report what it is meant to, and leaves gfile code alone.
# ---------------------------------------------------------------------------------------------

def test_checker_reports_open_of_an_artifact_uri():
    source = textwrap.dedent("""\
        import json

        def read_report(artifact):
            with open(artifact.uri) as handle:
                return json.load(handle)
        """)
    findings = check_source(source, "components/example.py")
    assert [str(f) for f in findings] == ["components/example.py:4: open(...) in read_report"]


def test_checker_passes_gfile_code():
    source = textwrap.dedent("""\
        import io
        import json
        import os
        import numpy as np
        import tensorflow as tf
        from tfx.dsl.io import fileio

        def write(artifact, value, figure, table):
            folder = os.path.join(artifact.uri, "report")
            tf.io.gfile.makedirs(folder)
            with tf.io.gfile.GFile(os.path.join(folder, "value.json"), "w") as handle:
                json.dump(value, handle)
            if fileio.exists(folder):
                with fileio.open(os.path.join(folder, "copy.json"), "w") as handle:
                    handle.write(json.dumps(value))
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png")
            np.save(buffer, table)
            tf.io.gfile.copy(os.path.join(folder, "value.json"), os.path.join(folder, "b.json"), overwrite=True)
            return [name for name in tf.io.gfile.listdir(folder)]
        """)
    assert check_source(source) == []


@pytest.mark.parametrize("source, call", [
    ("from pathlib import Path\ndef f(uri):\n    return Path(uri).read_text()", "pathlib.Path"),
    ("import pathlib\ndef f(uri):\n    return pathlib.Path(uri).exists()", "pathlib"),
    ("def f(module_dir):\n    return (module_dir / 'info.json').read_text()", ".read_text(...)"),
    ("import shutil\ndef f(uri):\n    shutil.rmtree(uri)", "shutil.rmtree(...)"),
    ("import os as _os\ndef f(uri):\n    _os.makedirs(uri, exist_ok=True)", "os.makedirs(...)"),
    ("from os.path import exists\ndef f(uri):\n    return exists(uri)", "os.path.exists(...)"),
    ("from os import path\ndef f(uri):\n    return path.isdir(uri)", "os.path.isdir(...)"),
    ("import os\ndef f(uri):\n    os.replace(uri + '.tmp', uri)", "os.replace(...)"),
    ("import glob\ndef f(uri):\n    return glob.glob(uri + '/*')", "glob.glob(...)"),
    ("import numpy as np\ndef f(uri):\n    return np.load(uri)", "numpy.load(...) on a path"),
    ("def f(figure, uri):\n    figure.savefig(uri)", ".savefig(...) on a path"),
    ("import io\ndef f(uri):\n    return io.open(uri).read()", "io.open(...)"),
])
def test_checker_reports_local_only_calls(source, call):
    assert call in [f.call for f in check_source(source)]


def test_checker_keys_findings_by_function():
    source = "import os\nclass Writer:\n    def save(self, uri):\n        os.makedirs(uri)\n"
    assert [(f.line, f.function) for f in check_source(source)] == [(4, "Writer.save")]


# ---------------------------------------------------------------------------------------------
# The changed code, run on a URI that is not a local path (TensorFlow's ram:// filesystem).
# ---------------------------------------------------------------------------------------------

def _ram(name: str) -> str:
    return f"ram://uri_io_test/{uuid.uuid4().hex}/{name}"


def _write(uri: str, data: bytes) -> None:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    tf.io.gfile.makedirs(os.path.dirname(uri))
    with tf.io.gfile.GFile(uri, "wb") as handle:
        handle.write(data)


@pytest.mark.parametrize("name", ["vectors.txt", "vectors.txt.gz"])
def test_word_vectors_are_read_from_a_uri(name):
    from models.hub_module import read_word_vectors  # pylint: disable=import-outside-toplevel

    text = b"3 2\nthe 0.1 0.2\ngood 1.0 -1.0\n, 9 9\n"
    uri = _ram(name)
    _write(uri, gzip.compress(text) if name.endswith(".gz") else text)
    words, vectors = read_word_vectors(uri)
    assert words == ["the", "good"]
    np.testing.assert_allclose(vectors, [[0.1, 0.2], [1.0, -1.0]], rtol=1e-6)


def test_embedding_report_is_written_to_a_uri():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from models import embedding_report as er  # pylint: disable=import-outside-toplevel

    vocabulary = ["the", "great", "awful", "good", "bad", "movie"]
    matrix = np.array([[0, 0], [0.1, 0.3], [2, 0.1], [-2, 0.2], [0.5, -0.1], [-1, 0], [0, 0.4]], dtype=np.float32)
    out = _ram("run/embedding_report")
    report = er.write_report(matrix, vocabulary, out, top_k=2)
    assert report["png"] == f"{out}/{er.PNG_NAME}"
    assert sorted(tf.io.gfile.listdir(out)) == sorted([er.PNG_NAME, er.HTML_NAME, er.JSON_NAME])
    with tf.io.gfile.GFile(report["png"], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with tf.io.gfile.GFile(report["json"]) as handle:
        assert json.load(handle)["most_positive"][0][0] == "great"
    with tf.io.gfile.GFile(report["html"]) as handle:
        assert "data:image/png;base64," in handle.read()


def test_hub_module_is_exported_to_a_uri_and_rebuilt_in_place():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from models import hub_module as hm  # pylint: disable=import-outside-toplevel
    from models.errors import UserError  # pylint: disable=import-outside-toplevel

    words = ["good", "bad", "movie"]
    out = _ram("modules/glove")
    assert hm.build_module(words, np.eye(3, dtype=np.float32), out, num_oov_buckets=2) == out
    with tf.io.gfile.GFile(f"{out}/{hm.MODULE_INFO_NAME}") as handle:
        assert json.load(handle)["vocab_size"] == 3
    with tf.io.gfile.GFile(f"{out}/assets/{hm.VOCAB_ASSET_NAME}") as handle:
        assert handle.read().split() == words
    again = 2 * np.eye(3, dtype=np.float32)
    hm.build_module(words, again, out, num_oov_buckets=2)  # an earlier module is replaced
    loaded = tf.saved_model.load(out)
    np.testing.assert_allclose(loaded(tf.constant(["bad"])).numpy()[0], again[1], rtol=1e-6)
    foreign = _ram("data")
    _write(f"{foreign}/keep.txt", b"precious")
    with pytest.raises(UserError, match="not an earlier module"):
        hm.build_module(words, np.eye(3, dtype=np.float32), foreign, num_oov_buckets=2)
    assert tf.io.gfile.listdir(foreign) == ["keep.txt"]
