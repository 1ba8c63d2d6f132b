"""Pusher executor: atomic, monotonic, bounded pushes that never serve a duplicate.

A push **stages, then publishes**:

1. the blessed model is copied into `<serving_dir>/.staging-<version>-<started>-<random>/`
   (TF Serving loads only all-digit folder names), `assets.extra/push_in_progress` first and
   `saved_model.pb` last;
2. the staging folder is renamed to `<serving_dir>/<version>/` (`fileio.rename`: atomic on a
   local disk; on gs:// and s3:// a copy, done object by object if the store cannot rename);
3. the completion marker `<version>/assets.extra/push_complete.json` is written last (then the
   in-progress file is removed). Every reader (components/serving_dir.py) checks the marker, so
   a push killed at any point leaves no version that the Pusher, LatestServedModel or `predict`
   would accept. TF Serving itself does not read the marker: on a local disk it only ever sees a
   fully copied folder, on an object store it may try a half-renamed one and fail to load it.

**Versions are monotonic**: max(highest numeric folder, or staging folder's version, + 1, unix
time), so two pushes in one second get distinct increasing numbers and a clock that went back
never reuses or lowers one.

**Idempotent**: when the candidate's content digest equals that of the highest version, and
that version is complete and loads, nothing is copied; the artifact is marked pushed at that
version with `already_serving=1` (a re-run with nothing changed hands the Pusher the same model
again). A highest version that is incomplete or does not load is never "already serving": a
fresh version is pushed above it, so TF Serving (which loads the highest number) moves on.

**Bounded**: after each run the newest `keep_versions` complete versions are kept and older
complete ones removed (so the newest complete version is never removed); numeric folders that
are not complete and older than the oldest kept one go too. Staging folders of pushes that died
are removed once they are STALE_STAGING_SECONDS old, judged by the start time in their name. Not
"all of them": locally the workdir lock serialises the runs of one workdir, but a serving folder
can be shared by several workdirs, and on Kubeflow nothing serialises two pipeline runs.

`custom_config` (PusherSpec's, a dict) must hold `keep_versions`: an int >= 1.
"""
from __future__ import annotations

import datetime
import logging
import os
import secrets
import time
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.pusher import component as tfx_pusher_component
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils

from components import serving_dir as sd
from models.digest import content_digest
from models.errors import UserError

log = logging.getLogger("imdb.pusher")

KEEP_VERSIONS_KEY = "keep_versions"
STALE_STAGING_SECONDS = 10 * 60  # a push copies a model in seconds; one this old has died
SAVED_MODEL = "saved_model.pb"


def now() -> float:
    """The clock versions and staging ages come from (tests move it)."""
    return time.time()


def copy_file(source: str, target: str) -> None:
    """Copies one file of a push (the fault-injection test replaces it to die mid-copy)."""
    fileio.copy(source, target, overwrite=True)


def keep_versions_from(custom_config: Any) -> int:
    """`keep_versions` from the Pusher's custom_config (a dict, or the JSON string TFX stores)."""
    config = json_utils.loads(custom_config) if isinstance(custom_config, str) else custom_config
    if not isinstance(config, dict) or KEEP_VERSIONS_KEY not in config:
        raise ValueError(f"IdempotentPusher needs custom_config={{'{KEEP_VERSIONS_KEY}': N}} (how many complete "
                         f"model versions to keep), got {config!r}")
    keep = config[KEEP_VERSIONS_KEY]
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise UserError(f"keep_versions must be a whole number of at least 1, not {keep!r}.")
    return keep


def _relative_files(top: str) -> List[str]:
    top = top.rstrip("/")
    return [os.path.relpath(os.path.join(root, name.rstrip("/")), top)
            for root, _, files in fileio.walk(top) for name in files]


def _is_own_file(relative: str) -> bool:
    return relative in sd.OWN_FILES or relative.startswith(sd.MARKER_RELPATH)


def model_digest(model_dir: str) -> str:
    """The SavedModel folder's content digest, the push's own files (marker, in-progress file,
    release notes) left out, so a served version and its source digest alike."""
    return content_digest(model_dir.rstrip("/"), skip=_is_own_file)


def copy_tree(source: str, target: str) -> int:
    """Copies every file, the in-progress file first and saved_model.pb last; returns the count."""
    files = sorted(_relative_files(source),
                   key=lambda rel: (rel != sd.IN_PROGRESS_RELPATH, rel == SAVED_MODEL, rel))
    made = set()
    for relative in files:
        destination = os.path.join(target, relative)
        folder = os.path.dirname(destination)
        if folder not in made:
            fileio.makedirs(folder)
            made.add(folder)
        copy_file(os.path.join(source, relative), destination)
    return len(files)


def next_version(serving_dir: str, at: float, ignore: Optional[str] = None) -> int:
    """max(every numeric version and every other staging folder's version, + 1; the clock)."""
    taken = [int(v) for v in sd.numeric_versions(serving_dir)]
    taken += [parsed[0] for name in sd.staging_folders(serving_dir)
              if name != ignore and (parsed := sd.parse_staging_name(name))]
    return max(int(at), max(taken, default=0) + 1)


def remove_stale_staging(serving_dir: str, at: float, max_age: float = STALE_STAGING_SECONDS) -> List[str]:
    """Removes staging folders started `max_age` seconds or more before `at` (or not named by us)."""
    removed = []
    for name in sd.staging_folders(serving_dir):
        parsed = sd.parse_staging_name(name)
        if parsed is None or at - parsed[1] >= max_age:
            fileio.rmtree(os.path.join(serving_dir, name))
            removed.append(name)
            log.warning("removed %s, left in %s by a push that did not finish", name, serving_dir)
    return removed


def prune(serving_dir: str, keep: int) -> List[str]:
    """Keeps the newest `keep` (>= 1) complete versions; removes older complete versions and the
    incomplete numeric folders older than the oldest kept one. Returns the removed versions."""
    complete = sd.complete_versions(serving_dir)
    if not complete:
        return []
    kept = complete[:keep]
    oldest_kept = int(kept[-1])
    doomed = complete[keep:] + [v for v in sd.numeric_versions(serving_dir)
                                if v not in complete and int(v) < oldest_kept]
    for version in sorted(doomed, key=int):
        fileio.rmtree(sd.version_dir(serving_dir, version))
        log.info("removed served version %s (keeping the newest %d complete: %s)", version, keep, ", ".join(kept))
    return sorted(doomed, key=int)


def _publish(staging: str, final: str, remote: bool) -> None:
    try:
        fileio.rename(staging, final)
    except Exception as error:  # pylint: disable=broad-except
        if not remote:
            raise
        log.info("the store cannot rename folders (%s); copying %s to %s", sd.first_line(error), staging, final)
        copy_tree(staging, final)
        fileio.rmtree(staging)


def copy_release_files(release_dir: Optional[str], staging: str) -> List[str]:
    """The blessing's release notes (serving_dir.RELEASE_FILES) into the version's assets.extra/."""
    copied = []
    for name, relative in zip(sd.RELEASE_FILES, sd.RELEASE_RELPATHS):
        source = os.path.join(release_dir, name) if release_dir else None
        if source and fileio.exists(source):
            copy_file(source, os.path.join(staging, relative))
            copied.append(name)
    return copied


def push(model_path: str, serving_dir: str, digest: str, release_dir: Optional[str] = None) -> str:
    """Stages the model (with the release notes found in `release_dir`), publishes it as the next
    version, writes the marker; returns the version."""
    started = now()
    version = next_version(serving_dir, started)
    name = sd.staging_name(version, started, secrets.token_hex(4))
    staging = os.path.join(serving_dir, name)
    try:
        fileio.makedirs(os.path.join(staging, sd.EXTRA_DIR))
        with fileio.open(os.path.join(staging, sd.IN_PROGRESS_RELPATH), "w") as handle:
            handle.write(f"push of {model_path} started at {started}\n")
        files = copy_tree(model_path, staging)
        copy_release_files(release_dir, staging)
        if fileio.exists(sd.version_dir(serving_dir, str(version))):  # someone else published it meanwhile
            version = next_version(serving_dir, now(), ignore=name)
        final = sd.version_dir(serving_dir, str(version))
        _publish(staging, final, remote="://" in serving_dir)
    except BaseException:
        if fileio.exists(staging):
            fileio.rmtree(staging)
        raise
    finished = now()
    sd.write_marker(final, {
        "format": sd.MARKER_FORMAT, "version": str(version), "model_digest": digest,
        "digest_algorithm": "sha256 over each file's relative path, a NUL and its bytes, in path order, push files excluded",
        "source_uri": model_path, "files": files,
        "pushed_at": datetime.datetime.fromtimestamp(finished, datetime.timezone.utc).isoformat(timespec="seconds"),
        "pushed_at_unix": round(finished, 3),
    })
    fileio.remove(os.path.join(final, sd.IN_PROGRESS_RELPATH))
    return str(version)


def _serving_same_model(serving_dir: str, digest: str) -> Optional[str]:
    """The highest version if it holds this very model and is complete and loads, else None."""
    versions = sd.numeric_versions(serving_dir)
    if not versions:
        return None
    version, path = versions[0], sd.version_dir(serving_dir, versions[0])
    if not sd.is_complete(path):
        log.warning("the highest served version %s has no completion marker (an interrupted push or a damaged "
                    "folder); a new version is pushed above it", version)
        return None
    if model_digest(path) != digest:
        return None
    error = sd.load_error(path)
    if error is not None:
        log.warning("skipping served version %s (%s): it does not load: %s; a new version is pushed above it",
                    version, path, error)
        return None
    return version


class Executor(tfx_pusher_executor.Executor):
    """Filesystem pushes only (like TFX's); TFX's CheckBlessing, GetModelPath and _MarkPushed."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        keep = keep_versions_from(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY))
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"Invalid push destination {destination.WhichOneof('destination')}")
        if destination.filesystem.versioning not in (pusher_pb2.Versioning.AUTO, pusher_pb2.Versioning.UNIX_TIMESTAMP):
            raise NotImplementedError(f"Invalid Versioning {destination.filesystem.versioning}")
        serving_dir = destination.filesystem.base_directory
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            log.info("the model is not blessed: nothing pushed")
            return
        model_path = self.GetModelPath(input_dict)
        fileio.makedirs(serving_dir)
        remove_stale_staging(serving_dir, now())
        digest = model_digest(model_path)
        served = _serving_same_model(serving_dir, digest)
        if served is not None:
            self._MarkPushed(model_push, pushed_destination=sd.version_dir(serving_dir, served), pushed_version=served)
            model_push.set_int_custom_property("already_serving", 1)
            log.info("this model is already served as version %s; nothing copied", served)
        else:
            blessing = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_BLESSING_KEY])
            version = push(model_path, serving_dir, digest, release_dir=blessing.uri)
            io_utils.copy_dir(model_path, model_push.uri)  # TFX's archive copy of what was pushed
            self._MarkPushed(model_push, pushed_destination=sd.version_dir(serving_dir, version),
                             pushed_version=version)
            log.info("pushed version %s to %s", version, serving_dir)
        prune(serving_dir, keep)


class IdempotentPusher(tfx_pusher_component.Pusher):
    """TFX Pusher (blessed models only, `<serving_dir>/<version>/`) with the executor above;
    `custom_config={"keep_versions": N}` is required."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *args, custom_config: Optional[Dict[str, Any]] = None, **kwargs):
        keep_versions_from(custom_config)  # fail when the pipeline is built, not at its last step
        super().__init__(*args, custom_config=custom_config, **kwargs)
