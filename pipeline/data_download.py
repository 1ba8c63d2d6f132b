"""Fetch and safely unpack the Stanford Large Movie Review archive (aclImdb).

This is the library behind ``imdb-pipeline data download`` and ``run --data some.tar.gz``.
It needs only the standard library and tqdm, so it works before any ML dependency is importable.

Why each step exists:
* the download goes to ``<name>.part`` and is resumed with an HTTP Range request, because the
  archive is 84 MB and flaky connections are common;
* the SHA-256 is checked before the file gets its real name, so a truncated or tampered file
  never looks like a finished download;
* extraction goes through tarfile's ``data`` filter (members or links leaving the folder and
  device files are refused, leading slashes stripped) into a hidden temporary folder that is
  renamed into place, so a hostile archive cannot write outside ``dest_dir`` and a crash never
  leaves a half folder;
* a marker file recording the archive's SHA-256 makes a repeated call return at once, offline.

Every failure the user can cause raises :class:`models.errors.UserError` with one sentence.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import Optional, Tuple
from urllib.parse import unquote, urlparse

from tqdm import tqdm

from models.errors import UserError

DEFAULT_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"

# SHA-256 of Stanford's aclImdb_v1.tar.gz (84,125,825 bytes), as published in the TensorFlow
# Datasets checksum file tensorflow_datasets/url_checksums/imdb_reviews.txt (and used unchanged by
# e.g. Julia's MLDatasets IMDB datadep).
DEFAULT_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"

# Digests applied when the caller gives none: the same file is served over http and https.
_KNOWN_SHA256 = {
    DEFAULT_URL: DEFAULT_SHA256,
    DEFAULT_URL.replace("https://", "http://", 1): DEFAULT_SHA256,
}

MARKER_NAME = ".imdb-pipeline-extracted.json"
_TEMP_PREFIX = ".extract-"
_CHUNK = 1 << 20
_SEARCH_DEPTH = 3
_USER_AGENT = "imdb-pipeline-data-download/1"


# --------------------------------------------------------------------------- public API


def download(
    url: str,
    dest_dir,
    sha256: Optional[str] = None,
    progress: bool = True,
    timeout: float = 60,
    insecure_no_checksum: bool = False,
) -> Path:
    """Download, verify and extract the archive at ``url`` into ``dest_dir``; return the aclImdb folder.

    ``sha256`` is the expected hex digest; when None, the published digest is used for the
    Stanford URL, and any other URL is refused unless ``insecure_no_checksum``: then nothing is
    verified and nothing is reused by name (a different archive could carry the same name).
    Calling again is cheap: a finished verified extraction is reused without touching the
    network, and a verified archive is only extracted.
    """
    dest = _prepare_dest(dest_dir)
    expected = expected_sha256(url, sha256)
    if expected is None and not insecure_no_checksum:
        raise UserError(f"No SHA-256 is known for {url}: pass --sha256 HEX to verify the archive (or "
                        "--insecure-no-checksum to take it unverified).")
    name = archive_name(url)
    archive = dest / name
    if expected is None:  # unverified: nothing of an earlier download is trusted by its name
        for stale in (archive, archive.with_name(archive.name + ".part")):
            stale.unlink(missing_ok=True)
    done = _completed_extraction(dest, expected, name) if expected else None
    if done is not None:
        return done
    digest = _reusable_archive_digest(archive, expected, progress)
    if digest is None:
        digest = _download_verified(url, archive, expected, progress, timeout)
    return _extract_verified(archive, dest, digest)


def extract_archive(archive_path, dest_dir) -> Path:
    """Safely extract a .tar.gz holding the IMDB reviews into ``dest_dir``; return its aclImdb folder.

    Refuses archives whose members could write outside ``dest_dir``. Reuses an earlier
    extraction of the same archive (same SHA-256) instead of unpacking again.
    """
    archive = Path(archive_path).expanduser()
    if not archive.is_file():
        raise UserError(f"Archive {archive} does not exist or is not a file.")
    dest = _prepare_dest(dest_dir)
    digest = sha256_file(archive)
    done = _completed_extraction(dest, digest, archive.name)
    if done is not None:
        return done
    return _extract_verified(archive, dest, digest)


def expected_sha256(url: str, sha256: Optional[str] = None) -> Optional[str]:
    """Return the normalised digest to check for ``url``: the given one, else the known one, else None."""
    if sha256 is None:
        return _KNOWN_SHA256.get(url)
    digest = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise UserError(f"The expected SHA-256 {sha256!r} is not 64 hexadecimal characters.")
    return digest


def archive_name(url: str) -> str:
    """Return the file name the archive gets locally: the last path component of ``url``."""
    name = PurePosixPath(unquote(urlparse(url).path)).name
    if name in ("", ".", "..") or "\\" in name:
        raise UserError(f"Cannot tell the archive file name from {url}; it should end in a file name such as aclImdb_v1.tar.gz.")
    return name


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in chunks so large archives need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- download steps


def _prepare_dest(dest_dir) -> Path:
    """Create ``dest_dir`` if needed and return it as an absolute path for clear messages."""
    dest = Path(dest_dir).expanduser().resolve()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create the data folder {dest}: {exc.strerror or exc}.") from None
    return dest


def _reusable_archive_digest(archive: Path, expected: Optional[str], progress: bool) -> Optional[str]:
    """Return the digest of an already downloaded archive that may be reused, deleting a bad one."""
    if not archive.is_file():
        return None
    digest = sha256_file(archive)
    if expected is None or digest == expected:
        return digest
    if progress:
        print(f"{archive} does not match the expected SHA-256; downloading it again.", file=sys.stderr)
    archive.unlink()
    return None


def _download_verified(url: str, archive: Path, expected: Optional[str], progress: bool, timeout: float) -> str:
    """Fetch ``url`` into ``<archive>.part``, check its digest, then give it its final name atomically."""
    part = archive.with_name(archive.name + ".part")
    _fetch(url, part, progress, timeout)
    digest = sha256_file(part)
    if expected is not None and digest != expected:
        part.unlink()
        raise UserError(
            f"The file downloaded from {url} has SHA-256 {digest} instead of the expected {expected}, "
            "so it was deleted; check the URL and the expected checksum."
        )
    os.replace(part, archive)
    return digest


def _fetch(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``part``, continuing from its current size when the server honours Range."""
    for _attempt in range(2):
        offset = part.stat().st_size if part.exists() else 0
        response = _open(url, offset, timeout)
        if response is None:  # 416 for a .part that already holds the whole file
            return
        with response:
            start, total = _response_span(response, offset)
            if start is None:  # a byte range we did not ask for: start again from zero
                part.unlink(missing_ok=True)
                continue
            _stream_to_file(url, response, part, start, total, progress)
        return
    raise UserError(f"The server for {url} keeps answering with byte ranges that were not requested.")


def _open(url: str, offset: int, timeout: float):
    """Send the GET (with a Range header when resuming); return the response, or None if already complete."""
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return _after_unsatisfiable_range(url, offset, exc, timeout)
        raise UserError(f"Downloading {url} failed with HTTP {exc.code} ({exc.reason}).") from None
    except urllib.error.URLError as exc:
        raise UserError(f"Could not reach {url}: {exc.reason}.") from None
    except ValueError:
        raise UserError(f"{url} is not a valid download URL (expected http:// or https://).") from None
    except (OSError, http.client.HTTPException) as exc:
        raise UserError(f"Could not download {url}: {exc}.") from None


def _after_unsatisfiable_range(url: str, offset: int, exc: urllib.error.HTTPError, timeout: float):
    """Handle HTTP 416: the .part is complete if the server's size equals it, else restart from zero."""
    match = re.fullmatch(r"bytes \*/(\d+)", (exc.headers.get("Content-Range") or "").strip())
    if match and int(match.group(1)) == offset:
        return None
    return _open(url, 0, timeout)


def _response_span(response, offset: int) -> Tuple[Optional[int], Optional[int]]:
    """Return (first byte in the body, total size) or (None, None) for a range that does not fit."""
    length = response.headers.get("Content-Length")
    if response.status != 206:  # full body: the server ignored or was not sent a Range header
        return 0, int(length) if length and length.isdigit() else None
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (response.headers.get("Content-Range") or "").strip())
    if not match or int(match.group(1)) != offset:
        return None, None
    total = match.group(3)
    return offset, int(total) if total.isdigit() else None


def _stream_to_file(url: str, response, part: Path, start: int, total: Optional[int], progress: bool) -> None:
    """Copy the body to ``part`` (appending when resuming) and fail clearly if it ends early.

    Progress goes to stderr: a tqdm bar on a terminal; in a log (not a TTY) a line at the start
    and one at the end instead.
    """
    name, began = part.name[: -len(".part")], time.monotonic()
    log_lines = progress and not sys.stderr.isatty()
    if log_lines:
        of_total = f" of {_size(total)}" if total else ""
        resuming = f", resuming at {_size(start)}" if start else ""
        print(f"Downloading {name}{of_total} from {url}{resuming}.", file=sys.stderr, flush=True)
    done = start
    bar = tqdm(desc=name, total=total, initial=start, unit="B", unit_scale=True, file=sys.stderr,
               disable=not progress or log_lines)
    try:
        with bar, open(part, "ab" if start else "wb") as fh:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                fh.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as exc:
        raise UserError(f"The download of {url} stopped after {done} bytes ({exc}); run it again to resume.") from None
    if total is not None and done < total:
        raise UserError(f"The download of {url} stopped after {done} of {total} bytes; run it again to resume.")
    if log_lines:
        print(f"Downloaded {name}: {_size(done)} in {time.monotonic() - began:.1f} s.", file=sys.stderr, flush=True)


def _size(count: float) -> str:
    """A byte count as tqdm writes it (SI units), e.g. 84.1MB."""
    return tqdm.format_sizeof(count, suffix="B")


# --------------------------------------------------------------------------- extraction steps


def _extract_verified(archive: Path, dest: Path, digest: str) -> Path:
    """Unpack into a temporary folder inside ``dest``, move the aclImdb folder into place, write the marker."""
    (dest / MARKER_NAME).unlink(missing_ok=True)
    _remove_stale_temp_dirs(dest)
    tmp = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=dest))
    try:
        _safe_extract_all(archive, tmp)
        found = _find_data_dir(tmp)
        if found is None:
            raise UserError(f"{archive} contains no aclImdb folder (a folder with train/ or test/ holding pos/ and neg/).")
        final = dest / (found.name if found != tmp else "aclImdb")
        _move_into_place(found, final)
        _write_marker(dest, digest, archive.name, final.name)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _safe_extract_all(archive: Path, root: Path) -> None:
    """Extract ``archive`` under ``root`` through tarfile's ``data`` filter, which refuses unsafe members."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(root, filter="data")
    except tarfile.FilterError as exc:  # its message names the member: "'../evil.txt' would be extracted to ..."
        raise UserError(f"Refusing to extract {archive}: {exc}.") from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UserError(f"{archive} is not a readable gzip-compressed tar archive ({exc}).") from None
    except OSError as exc:
        raise UserError(f"Could not extract {archive} into {root.parent}: {exc.strerror or exc}.") from None


def _is_data_dir(folder: Path) -> bool:
    """True if ``folder`` looks like aclImdb: train/ or test/ holding pos/ or neg/."""
    return any((folder / split / label).is_dir() for split in ("train", "test") for label in ("pos", "neg"))


def _find_data_dir(root: Path) -> Optional[Path]:
    """Breadth-first search (a few levels deep, no symlinks) for the aclImdb folder under ``root``."""
    level = [root]
    for _depth in range(_SEARCH_DEPTH + 1):
        for folder in level:
            if _is_data_dir(folder):
                return folder
        level = [child for folder in level for child in sorted(folder.iterdir()) if child.is_dir() and not child.is_symlink()]
    return None


def _move_into_place(src: Path, final: Path) -> None:
    """Rename ``src`` to ``final``; an old ``final`` is moved aside first and then deleted."""
    if not final.exists() and not final.is_symlink():
        os.replace(src, final)
        return
    trash = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=final.parent))
    os.replace(final, trash / "old")
    os.replace(src, final)
    shutil.rmtree(trash, ignore_errors=True)


def _remove_stale_temp_dirs(dest: Path) -> None:
    """Delete temporary folders left by an extraction that was killed part-way."""
    for leftover in dest.glob(_TEMP_PREFIX + "*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


# --------------------------------------------------------------------------- marker


def _write_marker(dest: Path, digest: str, archive: str, folder: str) -> None:
    """Record a finished extraction (atomically) so later calls can skip all work."""
    data = {"sha256": digest, "archive": archive, "folder": folder}
    tmp = dest / (MARKER_NAME + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, dest / MARKER_NAME)


def _completed_extraction(dest: Path, expected: Optional[str], archive: str) -> Optional[Path]:
    """Return the folder of a finished extraction matching ``expected`` (or ``archive`` when no digest), else None."""
    try:
        data = json.loads((dest / MARKER_NAME).read_text(encoding="utf-8"))
        folder, digest, name = data["folder"], data["sha256"], data["archive"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(folder, str) or PurePosixPath(folder).name != folder or folder in ("", ".", ".."):
        return None
    if (expected is not None and digest != expected) or (expected is None and name != archive):
        return None
    path = dest / folder
    return path if path.is_dir() and _is_data_dir(path) else None
