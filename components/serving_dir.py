"""The TF Serving model folder, and the one reading of it that the Pusher, the Kubeflow baseline
(LatestServedModel) and `predict` share. Local paths, gs:// and s3:// alike (tfx fileio only).

Layout, as the Pusher (components/pusher.py) writes it:

    <serving_dir>/<version>/                                 all digits: what TF Serving loads
    <serving_dir>/<version>/assets.extra/push_complete.json  the completion marker, written last
    <serving_dir>/.staging-<version>-<started>-<random>/     a push being copied (TF Serving
                                                             loads only all-digit folder names)

A version is **complete** when its marker is there and reads as a JSON object. On gs:// and s3://
a rename is a copy, so a numeric folder can exist half-filled; only the marker, written after
it, says the copy finished. A folder without a marker counts as complete only if it looks like
a push by an older release of this project (TFX's stock Pusher, which copied saved_model.pb last
and wrote no marker): its `saved_model.pb` is non-empty and it bears no trace of this Pusher --
no unreadable marker and no `push_in_progress` file, which this Pusher writes first into every
staging folder (a gs:// rename copies objects in name order, and `assets.extra/` sorts before
`saved_model.pb`) and removes after the marker.

Complete is not the same as loadable (a file can be damaged after the push): readers that need
a working model go through `newest_loadable_version`, which skips a version that fails to load
with a WARNING naming it and the error's first line.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tfx.dsl.io import fileio

log = logging.getLogger("imdb.serving")

EXTRA_DIR = "assets.extra"                                     # TF Serving's folder for extra files
MARKER_NAME = "push_complete.json"
MARKER_RELPATH = f"{EXTRA_DIR}/{MARKER_NAME}"                  # written last by the Pusher
IN_PROGRESS_RELPATH = f"{EXTRA_DIR}/push_in_progress"          # written first, removed after the marker
# The release notes a version carries, copied by the Pusher from the BlessingGate's artifact: the
# metrics it was blessed with (the next gate's bar) and its training data's statistics (the next
# data gate's drift reference).
RELEASE_FILES = ("blessing_metrics.json", "train_statistics.pb")
RELEASE_RELPATHS = tuple(f"{EXTRA_DIR}/{name}" for name in RELEASE_FILES)
OWN_FILES = (MARKER_RELPATH, IN_PROGRESS_RELPATH) + RELEASE_RELPATHS  # not part of the model (nor of its digest)
STAGING_PREFIX = ".staging-"
MARKER_FORMAT = 1


def _name(entry: str) -> str:
    return entry.rstrip("/")  # gfile lists gs:// folders as "name/"


def version_dir(serving_dir: str, version: str) -> str:
    return os.path.join(serving_dir, str(version))


def marker_path(model_dir: str) -> str:
    return os.path.join(model_dir, EXTRA_DIR, MARKER_NAME)


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message (TensorFlow's run to dozens of lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def numeric_versions(serving_dir: str) -> List[str]:
    """Every all-digit folder name, complete or not, highest first ([] when the folder is missing)."""
    if not serving_dir or not fileio.exists(serving_dir):
        return []
    return sorted((_name(e) for e in fileio.listdir(serving_dir) if _name(e).isdigit()), key=int, reverse=True)


def read_marker(model_dir: str) -> Optional[Dict[str, Any]]:
    """The completion marker of a version folder, or None when it is missing or unreadable."""
    path = marker_path(model_dir)
    try:
        if not fileio.exists(path):
            return None
        with fileio.open(path, "r") as handle:
            marker = json.loads(handle.read())
    except Exception as error:  # pylint: disable=broad-except  (a torn or unreadable marker is no marker)
        log.warning("the completion marker %s cannot be read (%s); the version counts as incomplete",
                    path, first_line(error))
        return None
    return marker if isinstance(marker, dict) else None


def write_marker(model_dir: str, marker: Dict[str, Any]) -> None:
    """Writes the marker under a temporary name, then renames it (a reader never sees half a marker)."""
    path = marker_path(model_dir)
    fileio.makedirs(os.path.dirname(path))
    temporary = path + ".tmp"
    with fileio.open(temporary, "w") as handle:
        handle.write(json.dumps(marker, indent=1, sort_keys=True))
    fileio.rename(temporary, path, overwrite=True)


def _legacy_complete(model_dir: str) -> bool:
    """A version pushed by an older release: non-empty saved_model.pb and no trace of this Pusher
    (an in-progress file, or a marker that exists but does not read, means a push of ours broke)."""
    graph = os.path.join(model_dir, "saved_model.pb")
    ours = (IN_PROGRESS_RELPATH, MARKER_RELPATH, MARKER_RELPATH + ".tmp")
    if any(fileio.exists(os.path.join(model_dir, relative)) for relative in ours) or not fileio.exists(graph):
        return False
    try:
        with fileio.open(graph, "rb") as handle:
            return bool(handle.read(1))
    except Exception:  # pylint: disable=broad-except  (unreadable: not complete)
        return False


def is_complete(model_dir: str) -> bool:
    return read_marker(model_dir) is not None or _legacy_complete(model_dir)


def complete_versions(serving_dir: str, warn_incomplete: bool = False) -> List[str]:
    """Complete versions (see the module docstring), highest first. Incomplete ones are left out;
    with `warn_incomplete`, each one above the highest complete version gets a WARNING."""
    complete = []
    for version in numeric_versions(serving_dir):
        if is_complete(version_dir(serving_dir, version)):
            complete.append(version)
        elif warn_incomplete and not complete:
            log.warning("skipping served version %s (%s): it is incomplete (no completion marker: a push that "
                        "did not finish, or an empty saved_model.pb)", version, version_dir(serving_dir, version))
    return complete


def newest_complete_version(serving_dir: str) -> Optional[str]:
    """Highest complete version, or None (cheap: no model is loaded)."""
    versions = complete_versions(serving_dir)
    return versions[0] if versions else None


def load_saved_model(model_dir: str) -> Any:
    """`tf.saved_model.load` in this process (from a local copy when on S3: models/storage.py);
    raises whatever TensorFlow raises."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  (readers that list versions need no TF)

    from models.storage import loadable_path  # pylint: disable=import-outside-toplevel

    return tf.saved_model.load(loadable_path(model_dir))


def _check_graph(model_dir: str) -> None:
    """TensorFlow's own error for a 0-byte saved_model.pb is about MetaGraph tags; say it plainly."""
    graph = os.path.join(model_dir, "saved_model.pb")
    if fileio.exists(graph):
        with fileio.open(graph, "rb") as handle:
            if not handle.read(1):
                raise ValueError("saved_model.pb is empty (0 bytes)")


def load_error(model_dir: str, load: Callable[[str], Any] = load_saved_model) -> Optional[str]:
    """None when the SavedModel in `model_dir` loads, else the first line of the error."""
    try:
        _check_graph(model_dir)
        load(model_dir)
    except Exception as error:  # pylint: disable=broad-except  (any failure to load means "broken")
        return first_line(error)
    return None


def newest_loadable_version(serving_dir: str, load: Callable[[str], Any] = load_saved_model,
                            versions: Optional[Sequence[str]] = None) -> Optional[Tuple[str, Any]]:
    """(version, what `load` returned) for the highest complete version that loads, or None.

    Tries `versions` (default: `complete_versions(serving_dir)`) highest first; each one whose
    load raises is skipped with a WARNING naming it and the error's first line. None means no
    complete version loads: callers tell "nothing pushed" from "all broken" by `versions`.
    """
    for version in complete_versions(serving_dir) if versions is None else versions:
        path = version_dir(serving_dir, version)
        try:
            _check_graph(path)
            return version, load(path)
        except Exception as error:  # pylint: disable=broad-except
            log.warning("skipping served version %s (%s): it does not load: %s", version, path, first_line(error))
    return None


def staging_folders(serving_dir: str) -> List[str]:
    """Names of the staging folders (pushes under way, or left by a crashed one)."""
    if not serving_dir or not fileio.exists(serving_dir):
        return []
    return sorted(_name(e) for e in fileio.listdir(serving_dir) if _name(e).startswith(STAGING_PREFIX))


def staging_name(version: int, started: float, token: str) -> str:
    return f"{STAGING_PREFIX}{version}-{int(started)}-{token}"


def parse_staging_name(name: str) -> Optional[Tuple[int, int]]:
    """(version, start unix time) from a staging folder name, or None when it is not one of ours."""
    parts = _name(name)[len(STAGING_PREFIX):].split("-")
    if not _name(name).startswith(STAGING_PREFIX) or len(parts) != 3 or not all(p.isdigit() for p in parts[:2]):
        return None
    return int(parts[0]), int(parts[1])
