"""Tests for pipeline.data_download against a real HTTP server on 127.0.0.1 (no network mocks)."""

from __future__ import annotations

import hashlib
import http.server
import io
from urllib.parse import urlparse
import random
import re
import socket
import tarfile
import threading
from pathlib import Path

import pytest
from tqdm import tqdm

from pipeline import data_download as dd
from models.errors import UserError

ARCHIVE = "aclImdb_v1.tar.gz"
REVIEWS = {
    "aclImdb/train/pos/0_9.txt": "A wonderful film, I loved every minute.",
    "aclImdb/train/pos/1_8.txt": "Great acting and a clever script.",
    "aclImdb/train/neg/0_2.txt": "Dull, slow and far too long.",
    "aclImdb/train/neg/1_1.txt": "The worst thing I have seen this year.",
    "aclImdb/test/pos/0_10.txt": "A masterpiece.",
    "aclImdb/test/neg/0_3.txt": "Forgettable.",
    "aclImdb/README": "Large Movie Review Dataset (test copy).",
}


# --------------------------------------------------------------------------- helpers


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_special(tar: tarfile.TarFile, name: str, kind: bytes, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    tar.addfile(info)


def make_tarball(path: Path, files: dict, padding: int = 200_000) -> bytes:
    """Write a .tar.gz with ``files`` plus an incompressible blob (so ranges are meaningful); return its bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            _add_file(tar, name, text.encode())
        if padding:
            _add_file(tar, "aclImdb/imdbEr.txt", random.Random(0).randbytes(padding))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.files; honours 'Range: bytes=N-' unless server.honor_range is False; records requests."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        srv = self.server
        srv.requests.append({"path": self.path, "range": self.headers.get("Range")})
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and srv.honor_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                srv.statuses.append(416)
                return
            self._send(206, body[start:], {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
        else:
            self._send(200, body, {})

    def _send(self, status: int, payload: bytes, headers: dict) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)
        self.server.statuses.append(status)
        self.server.bytes_sent += len(payload)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests, srv.statuses, srv.bytes_sent, srv.honor_range = {}, [], [], 0, True
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def served(server, tmp_path):
    """A server hosting a small aclImdb tarball; returns (server, url, bytes, sha256)."""
    data = make_tarball(tmp_path / "src.tar.gz", REVIEWS)
    server.files["/data/" + ARCHIVE] = data
    return server, f"{server.base}/data/{ARCHIVE}", data, hashlib.sha256(data).hexdigest()


def _assert_extracted(folder: Path, dest: Path) -> None:
    assert folder == dest.resolve() / "aclImdb"
    for name, text in REVIEWS.items():
        assert (dest / name).read_text() == text
    assert not list(dest.glob(".extract-*")), "temporary extraction folder left behind"


def _tree(root: Path) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --------------------------------------------------------------------------- download


def test_download_verifies_and_extracts(served, tmp_path):
    server, url, data, digest = served
    dest = tmp_path / "dest"
    folder = dd.download(url, dest, sha256=digest, progress=False)
    _assert_extracted(folder, dest)
    assert (dest / ARCHIVE).read_bytes() == data
    assert not (dest / (ARCHIVE + ".part")).exists()
    assert dd._completed_extraction(dest.resolve(), digest, ARCHIVE) == folder
    assert [r["range"] for r in server.requests] == [None]


def test_second_call_makes_no_request(served, tmp_path):
    server, url, _data, digest = served
    dest = tmp_path / "dest"
    first = dd.download(url, dest, sha256=digest, progress=False)
    (first / "sentinel").write_text("kept")  # re-extracting would replace the folder and drop this
    server.requests.clear()
    second = dd.download(url, dest, sha256=digest.upper(), progress=False)
    assert second == first
    assert server.requests == []
    assert (second / "sentinel").exists()


def test_present_archive_is_only_extracted(served, tmp_path):
    server, url, data, digest = served
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / ARCHIVE).write_bytes(data)
    folder = dd.download(url, dest, sha256=digest, progress=False)
    _assert_extracted(folder, dest)
    assert server.requests == []


def test_incomplete_extraction_is_redone_without_network(served, tmp_path):
    server, url, _data, digest = served
    dest = tmp_path / "dest"
    dd.download(url, dest, sha256=digest, progress=False)
    (dest / dd.MARKER_NAME).unlink()  # as if the process died before the marker was written
    (dest / "aclImdb/train/pos/0_9.txt").unlink()
    server.requests.clear()
    folder = dd.download(url, dest, sha256=digest, progress=False)
    _assert_extracted(folder, dest)
    assert server.requests == []


def test_resume_sends_range_and_fetches_only_the_rest(served, tmp_path):
    server, url, data, digest = served
    dest = tmp_path / "dest"
    dest.mkdir()
    n = len(data) // 3
    (dest / (ARCHIVE + ".part")).write_bytes(data[:n])
    folder = dd.download(url, dest, sha256=digest, progress=False)
    _assert_extracted(folder, dest)
    assert server.requests[0]["range"] == f"bytes={n}-"
    assert server.statuses == [206]
    assert server.bytes_sent == len(data) - n
    assert (dest / ARCHIVE).read_bytes() == data


def test_complete_part_file_is_accepted_after_416(served, tmp_path):
    server, url, data, digest = served
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / (ARCHIVE + ".part")).write_bytes(data)
    folder = dd.download(url, dest, sha256=digest, progress=False)
    _assert_extracted(folder, dest)
    assert server.statuses == [416]


def test_server_ignoring_range_restarts_from_zero(served, tmp_path):
    server, url, data, digest = served
    server.honor_range = False
    dest = tmp_path / "dest"
    dest.mkdir()
    # Junk in the .part: appending the full body to it would break the checksum.
    (dest / (ARCHIVE + ".part")).write_bytes(b"junk" * 1000)
    folder = dd.download(url, dest, sha256=digest, progress=False)
    _assert_extracted(folder, dest)
    assert server.requests[0]["range"] == "bytes=4000-"
    assert server.statuses == [200]
    assert (dest / ARCHIVE).read_bytes() == data


def test_wrong_sha256_raises_and_leaves_no_archive(served, tmp_path):
    _server, url, _data, _digest = served
    dest = tmp_path / "dest"
    with pytest.raises(UserError) as err:
        dd.download(url, dest, sha256="0" * 64, progress=False)
    assert url in str(err.value) and "SHA-256" in str(err.value)
    assert not (dest / ARCHIVE).exists()
    assert not (dest / (ARCHIVE + ".part")).exists()
    assert not (dest / "aclImdb").exists()


def test_bad_present_archive_is_downloaded_again(served, tmp_path):
    server, url, data, digest = served
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / ARCHIVE).write_bytes(b"not the archive")
    folder = dd.download(url, dest, sha256=digest, progress=False)
    _assert_extracted(folder, dest)
    assert (dest / ARCHIVE).read_bytes() == data
    assert len(server.requests) == 1


def test_malformed_sha256_is_a_user_error(served, tmp_path):
    _server, url, _data, _digest = served
    with pytest.raises(UserError, match="64 hexadecimal"):
        dd.download(url, tmp_path / "dest", sha256="abc", progress=False)


def test_a_custom_url_without_a_checksum_is_refused_before_any_request(served, tmp_path):
    server, url, _data, _digest = served
    before = len(server.requests) if hasattr(server, "requests") else None
    with pytest.raises(UserError, match=r"No SHA-256 is known for .*--sha256 HEX.*--insecure-no-checksum"):
        dd.download(url, tmp_path / "dest", progress=False)
    assert not (tmp_path / "dest").exists() or list((tmp_path / "dest").iterdir()) == []
    if before is not None:
        assert len(server.requests) == before


def test_an_unverified_download_is_never_reused_by_name(served, tmp_path):
    server, url, data, _digest = served
    dest = tmp_path / "dest"
    dd.download(url, dest, progress=False, insecure_no_checksum=True)
    first = sorted(p.name for p in (dest / "aclImdb" / "train" / "pos").iterdir())
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:  # same name, other content
        _add_file(tar, "aclImdb/train/pos/777_8.txt", b"a different archive")
        _add_file(tar, "aclImdb/train/neg/778_2.txt", b"bad")
    server.files[urlparse(url).path] = buf.getvalue()
    dd.download(url, dest, progress=False, insecure_no_checksum=True)
    assert sorted(p.name for p in (dest / "aclImdb" / "train" / "pos").iterdir()) == ["777_8.txt"] != first
    assert names


def test_404_mentions_url(server, tmp_path):
    url = f"{server.base}/missing/{ARCHIVE}"
    with pytest.raises(UserError) as err:
        dd.download(url, tmp_path / "dest", progress=False, insecure_no_checksum=True)
    assert url in str(err.value) and "404" in str(err.value)
    assert not (tmp_path / "dest" / ARCHIVE).exists()


def test_unreachable_host_is_a_user_error(tmp_path):
    with socket.socket() as sock:  # grab a free port, then close it so nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{ARCHIVE}"
    with pytest.raises(UserError, match=re.escape(url)):
        dd.download(url, tmp_path / "dest", progress=False, timeout=5, insecure_no_checksum=True)


def test_progress_on_non_tty_stderr_is_one_line_at_start_and_end(served, tmp_path, capsys):
    _server, url, data, digest = served
    dd.download(url, tmp_path / "dest", sha256=digest, progress=True)
    err = capsys.readouterr().err
    size = tqdm.format_sizeof(len(data), suffix="B")
    assert err.splitlines() == [f"Downloading {ARCHIVE} of {size} from {url}.", err.splitlines()[1]]
    assert re.fullmatch(rf"Downloaded {re.escape(ARCHIVE)}: {re.escape(size)} in \d+\.\d s\.", err.splitlines()[1])
    assert "\r" not in err and "%|" not in err  # no tqdm bar in a log


def test_resumed_download_says_where_it_resumes(served, tmp_path, capsys):
    _server, url, data, digest = served
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / (ARCHIVE + ".part")).write_bytes(data[:500])
    dd.download(url, dest, sha256=digest, progress=True)
    assert capsys.readouterr().err.splitlines()[0].endswith(f"from {url}, resuming at 500B.")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_tty_is_a_tqdm_bar(served, tmp_path, monkeypatch):
    _server, url, data, digest = served
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    dd.download(url, tmp_path / "dest", sha256=digest, progress=True)
    out = terminal.getvalue()
    assert "\r" in out and f"{ARCHIVE}: 100%|" in out
    total = tqdm.format_sizeof(len(data))
    assert f"| {total}/{total} [" in out  # bytes done / total
    assert "Downloading " not in out and "Downloaded " not in out


@pytest.mark.parametrize("tty", [False, True])
def test_no_progress_output_when_disabled(served, tmp_path, monkeypatch, tty):
    _server, url, _data, digest = served
    stream = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    dd.download(url, tmp_path / "dest", sha256=digest, progress=False)
    assert stream.getvalue() == ""


def test_default_constants():
    assert dd.DEFAULT_URL == "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    assert re.fullmatch(r"[0-9a-f]{64}", dd.DEFAULT_SHA256)
    assert dd.expected_sha256(dd.DEFAULT_URL) == dd.DEFAULT_SHA256
    assert dd.expected_sha256("http://example.org/x.tar.gz") is None
    assert dd.archive_name(dd.DEFAULT_URL) == ARCHIVE


# --------------------------------------------------------------------------- extraction


def _evil_members(kind: str, outside: Path):
    """Return a function adding one hostile member of ``kind`` to a tar (after the normal reviews)."""
    return {
        "dotdot": lambda tar: _add_file(tar, "../evil.txt", b"pwned"),
        "nested_dotdot": lambda tar: _add_file(tar, "aclImdb/../../evil.txt", b"pwned"),
        "symlink_etc": lambda tar: _add_special(tar, "aclImdb/etc", tarfile.SYMTYPE, "/etc"),
        "symlink_escape_then_write": lambda tar: (
            _add_special(tar, "aclImdb/escape", tarfile.SYMTYPE, "../../.."),
            _add_file(tar, "aclImdb/escape/evil.txt", b"pwned"),
        ),
        "hardlink_passwd": lambda tar: _add_special(tar, "aclImdb/passwd", tarfile.LNKTYPE, "/etc/passwd"),
        "hardlink_dotdot": lambda tar: _add_special(tar, "aclImdb/up", tarfile.LNKTYPE, "../outside.txt"),
        "device": lambda tar: _add_special(tar, "aclImdb/null", tarfile.CHRTYPE),
        "fifo": lambda tar: _add_special(tar, "aclImdb/pipe", tarfile.FIFOTYPE),
    }[kind]


@pytest.mark.parametrize("kind, member", [
    ("dotdot", "../evil.txt"),
    ("nested_dotdot", "aclImdb/../../evil.txt"),
    ("symlink_etc", "aclImdb/etc"),
    ("symlink_escape_then_write", "aclImdb/escape"),
    ("hardlink_passwd", "aclImdb/passwd"),
    ("hardlink_dotdot", "aclImdb/up"),
    ("device", "aclImdb/null"),
    ("fifo", "aclImdb/pipe"),
])
def test_malicious_tarball_is_refused(tmp_path, kind, member):
    outside = tmp_path / "outside"
    dest = outside / "a" / "b" / "dest"
    dest.mkdir(parents=True)
    archive = outside / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in REVIEWS.items():
            _add_file(tar, name, text.encode())
        _evil_members(kind, outside)(tar)
    before = _tree(tmp_path)
    with pytest.raises(UserError) as err:
        dd.extract_archive(archive, dest)
    message = str(err.value)
    assert message.startswith(f"Refusing to extract {archive}: {member!r} ") and message.endswith(".")
    assert "\n" not in message
    assert _tree(tmp_path) == before, "extraction wrote or left files behind"
    assert not (tmp_path / "evil.txt").exists()


def test_absolute_member_names_stay_inside_the_destination(tmp_path):
    """tarfile's data filter strips the leading '/' (as GNU tar does) instead of refusing the archive."""
    outside = tmp_path / "outside"
    archive = tmp_path / "abs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in REVIEWS.items():
            _add_file(tar, name, text.encode())
        _add_file(tar, str(outside / "abs_evil.txt"), b"pwned")
        _add_file(tar, "/aclImdb/train/pos/2_7.txt", b"Rooted but harmless.")
    dest = tmp_path / "dest"
    folder = dd.extract_archive(archive, dest)
    assert not outside.exists()
    assert (folder / "train/pos/2_7.txt").read_text() == "Rooted but harmless."
    assert _tree(dest) == {dd.MARKER_NAME} | {f"aclImdb/{p}" for p in _tree(folder)} | {"aclImdb"}


def test_malicious_tarball_via_download_leaves_only_the_archive(server, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        _add_file(tar, "aclImdb/train/pos/0_9.txt", b"ok")
        _add_file(tar, "../evil.txt", b"pwned")
    server.files["/" + ARCHIVE] = buf.getvalue()
    dest = tmp_path / "sub" / "dest"
    with pytest.raises(UserError, match=r"'\.\./evil\.txt'"):
        dd.download(f"{server.base}/{ARCHIVE}", dest, progress=False, insecure_no_checksum=True)
    assert not (tmp_path / "sub" / "evil.txt").exists()
    assert _tree(dest) == {ARCHIVE}


def test_extract_archive_directly_and_idempotently(tmp_path):
    archive = tmp_path / "reviews.tar.gz"
    make_tarball(archive, REVIEWS, padding=0)
    dest = tmp_path / "dest"
    folder = dd.extract_archive(archive, dest)
    _assert_extracted(folder, dest)
    marker_before = (dest / dd.MARKER_NAME).read_text()
    (folder / "sentinel").write_text("kept")  # a re-extraction would remove this
    assert dd.extract_archive(archive, dest) == folder
    assert (folder / "sentinel").exists()
    assert (dest / dd.MARKER_NAME).read_text() == marker_before


def test_internal_links_are_allowed(tmp_path):
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in REVIEWS.items():
            _add_file(tar, name, text.encode())
        _add_special(tar, "aclImdb/train/pos/link.txt", tarfile.SYMTYPE, "0_9.txt")
    folder = dd.extract_archive(archive, tmp_path / "dest")
    assert (folder / "train/pos/link.txt").read_text() == REVIEWS["aclImdb/train/pos/0_9.txt"]


def test_data_folder_found_under_other_names(tmp_path):
    archive = tmp_path / "flat.tar.gz"
    make_tarball(archive, {"train/pos/0_9.txt": "good", "train/neg/0_1.txt": "bad"}, padding=0)
    folder = dd.extract_archive(archive, tmp_path / "dest")
    assert folder == (tmp_path / "dest").resolve() / "aclImdb"
    assert (folder / "train/pos/0_9.txt").read_text() == "good"


def test_not_a_gzip_tarball(tmp_path):
    archive = tmp_path / "notes.tar.gz"
    archive.write_text("just some text, not an archive")
    with pytest.raises(UserError, match="not a readable gzip-compressed tar archive"):
        dd.extract_archive(archive, tmp_path / "dest")
    assert _tree(tmp_path / "dest") == set()


def test_truncated_tarball(tmp_path):
    archive = tmp_path / "cut.tar.gz"
    data = make_tarball(tmp_path / "full.tar.gz", REVIEWS)
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=re.escape(str(archive))):
        dd.extract_archive(archive, tmp_path / "dest")
    assert _tree(tmp_path / "dest") == set()


def test_archive_without_aclimdb_folder(tmp_path):
    archive = tmp_path / "other.tar.gz"
    make_tarball(archive, {"docs/readme.txt": "hello", "train/cats/1.txt": "meow"}, padding=0)
    with pytest.raises(UserError, match="contains no aclImdb folder"):
        dd.extract_archive(archive, tmp_path / "dest")
    assert _tree(tmp_path / "dest") == set()


def test_missing_archive_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        dd.extract_archive(tmp_path / "nope.tar.gz", tmp_path / "dest")
