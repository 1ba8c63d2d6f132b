"""What differs between the KFP backend releases a task meets, one record per release.

Each flag names the release it starts with and the file of kubeflow/pipelines' backend it was
read in (`backend/src/v2/...`, at the release tags 2.2.0 to 2.17.0; there are no backend releases
2.6 to 2.13). The harness (harness.py) and its pods (pods.py) act on these flags only.
"""
from __future__ import annotations

import dataclasses
from typing import Dict

LEGACY_OUTPUT_FILE = "/tmp/kfp_outputs/output_metadata.json"  # component/launcher_v2.go OutputMetadataFilepath
EXECUTOR_LOGS = "executor-logs"
# emptyDir volumes the Argo compiler mounts into every task pod (compiler/argocompiler/container.go, >= 2.3).
EMPTY_DIRS = ("/minio", "/s3", "/gcs", "/.local", "/.cache", "/.config")


@dataclasses.dataclass(frozen=True)
class KfpRelease:
    version: str
    # 2.3: emptyDirs at EMPTY_DIRS (argocompiler/container.go, #10857). Before, the launcher writes
    # into the container's own filesystem: a non-root task cannot create /minio unless the image
    # made it the task user's (kubeflow/pipelines#10397; kubeflow/Dockerfile does).
    empty_dirs: bool
    # 2.3: the launcher records `display_name` and `store_session_info` on each output (launcher_v2.go).
    session_info: bool
    # 2.5: the driver adds an output `executor-logs` of type system.Artifact to every task when
    # publishLogs is "true", the stock manifests' setting (driver/driver.go provisionOutputs); the
    # launcher tees the task's stdout/stderr into its local path and uploads it (launcher_v2.go).
    executor_logs: bool
    # 2.5: every artifact of an output list is uploaded (launcher_v2.go uploadOutputArtifacts); before, the first.
    all_output_artifacts: bool
    # 2.14: every artifact of an input list is downloaded (launcher_v2.go downloadArtifacts, #11725); before, the first.
    all_input_artifacts: bool
    # 2.15: outputFile is <LocalPathForURI(task root)>/output_metadata.json, inside the /minio
    # emptyDir, so TFX's `.temp` lands there too (driver.go provisionOutputs, #12256); before, LEGACY_OUTPUT_FILE.
    output_file_in_task_root: bool
    # 2.15: output artifacts carry `name` = their output key (driver.go); before, an empty name.
    output_artifact_names: bool
    # 2.16.1: the executor-logs URI gets a retry suffix `-<index>` (launcher_v2.go qualifyExecutorLogsForRetry),
    # and an executor's own entry for executor-logs in its output metadata is ignored.
    executor_logs_retry_suffix: bool
    # 2.17: DownloadBlob skips keys that share the prefix without being under it, `model_run/`
    # beside `model` (objectstore/object_store.go isBlobKeyUnderPrefix, #12928); before, such a
    # sibling lands beside the local folder (filepath.Rel gives ../model_run/...).
    download_skips_siblings: bool


def _release(version: str, **flags: bool) -> KfpRelease:
    fields = [field.name for field in dataclasses.fields(KfpRelease) if field.name != "version"]
    return KfpRelease(version, **{name: flags.get(name, False) for name in fields})


_23 = dict(empty_dirs=True, session_info=True)
_25 = dict(_23, executor_logs=True, all_output_artifacts=True)
_214 = dict(_25, all_input_artifacts=True)
_215 = dict(_214, output_file_in_task_root=True, output_artifact_names=True)
_2161 = dict(_215, executor_logs_retry_suffix=True)
RELEASES: Dict[str, KfpRelease] = {
    "2.2": _release("2.2"),
    "2.3": _release("2.3", **_23),
    "2.5": _release("2.5", **_25),
    "2.14": _release("2.14", **_214),
    "2.15": _release("2.15", **_215),
    "2.16.1": _release("2.16.1", **_2161),
    "2.17": _release("2.17", **_2161, download_skips_siblings=True),
}
NEWEST = "2.17"
# The oldest release the README supports (and the suite runs whole).
OLDEST_SUPPORTED = "2.2"


def get(version: str) -> KfpRelease:
    if version not in RELEASES:
        raise ValueError(f"Unknown KFP release {version!r}; the harness knows {', '.join(RELEASES)}.")
    return RELEASES[version]
