"""How the project's own artifact types are named in a KFP spec, and found again at run time.

TFX 1.16 writes a custom artifact type into the spec as a schema title, which must read
`namespace.Name` (compiler_utils._SCHEMA_TITLE_RE), and its container entrypoint later imports
that title as a Python class path. The project's types are named `imdb.Name` (legal, but not a
class path), so the entrypoint shim maps each title back to the real class.
"""
from __future__ import annotations

import re
from typing import Dict, Type

# Same pattern as tfx.orchestration.kubeflow.v2.compiler_utils._SCHEMA_TITLE_RE.
KFP_TITLE = re.compile(r"^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$")
TITLE_NAMESPACE = "imdb"


def project_types() -> tuple:
    """Every custom artifact class a project component can produce or consume."""
    from components.artifacts import IngestionReport  # pylint: disable=import-outside-toplevel

    return (IngestionReport,)


def kfp_title(artifact_class: Type) -> str:
    """The schema title the spec carries for a custom type: its TYPE_NAME when KFP accepts it."""
    name = artifact_class.TYPE_NAME
    return name if KFP_TITLE.fullmatch(name) else f"{TITLE_NAMESPACE}.{artifact_class.__name__}"


def class_paths_by_title() -> Dict[str, str]:
    """Spec title (and TYPE_NAME) -> importable class path, for the entrypoint shim."""
    paths = {}
    for artifact_class in project_types():
        path = f"{artifact_class.__module__}.{artifact_class.__qualname__}"
        paths[kfp_title(artifact_class)] = path
        paths[artifact_class.TYPE_NAME] = path
    return paths
