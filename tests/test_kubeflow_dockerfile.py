"""kubeflow/Dockerfile agrees with the project and with what the compiled spec expects of the image.

No Docker engine is available to the test suite, so the image is not built here; these checks
catch the drift that would only show on a cluster (wrong base, missing code, root user, a schema
path the spec points at but the image lacks).
"""
import fnmatch
import json
import re
import shlex
from pathlib import Path

from kubeflow.settings import ENTRYPOINT, IMAGE_SCHEMA_DIR, IMAGE_SOURCE_DIR

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "kubeflow" / "Dockerfile"


def instructions():
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            rows.append((keyword.upper(), rest.strip()))
    return rows


def stages():
    result = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, rest))
    return result


def test_base_image_is_the_tfx_release_the_lock_pins():
    locked = re.search(r"^tfx==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M).group(1)
    assert stages()[0][0] == ("FROM", f"tensorflow/tfx:{locked} AS worker")


def test_lock_and_project_are_installed():
    runs = " ".join(rest for keyword, rest in instructions() if keyword == "RUN")
    assert "pip install -r /tmp/requirements.lock" in runs
    assert "pip install --no-deps --no-build-isolation ." in runs
    assert "import kubeflow.entrypoint" in runs  # the shim is importable in the built image


def test_every_copied_path_exists_and_is_not_ignored():
    ignored = [line.strip() for line in (ROOT / "kubeflow" / "Dockerfile.dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for keyword, rest in instructions():
        if keyword != "COPY":
            continue
        *sources, _ = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source.rstrip("/"), pattern) for pattern in ignored), source


def test_project_packages_from_pyproject_are_in_the_image():
    # Python 3.10 has no tomllib; the packages list is one line of pyproject.toml.
    packages = json.loads(re.search(r"^packages = (\[.*\])$", (ROOT / "pyproject.toml").read_text(), re.M)
                          .group(1).replace("'", '"'))
    copied = {shlex.split(rest)[0].rstrip("/") for keyword, rest in instructions() if keyword == "COPY"}
    assert {package.split(".")[0] for package in packages} <= copied


def test_source_lands_where_the_spec_points_for_the_schema():
    workdirs = [rest for keyword, rest in stages()[0] if keyword == "WORKDIR"]
    assert workdirs == [IMAGE_SOURCE_DIR]
    assert IMAGE_SCHEMA_DIR == IMAGE_SOURCE_DIR + "/pipeline/configs"
    assert (ROOT / "pipeline" / "configs" / "schema.pbtxt").is_file()


def test_tasks_run_as_an_unprivileged_user():
    final = stages()[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")


def test_default_entrypoint_is_the_shim_the_spec_calls():
    entrypoints = [json.loads(rest) for keyword, rest in stages()[-1] if keyword == "ENTRYPOINT"]
    assert tuple(entrypoints[-1]) == ENTRYPOINT
