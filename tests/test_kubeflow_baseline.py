"""LatestServedModel hands the Evaluator the newest complete served model, or says there is none."""
from components.baseline_resolver import (ABSENT_PROPERTY, SOURCE_PROPERTY, VERSION_PROPERTY, LatestServedModel,
                                          newest_complete_version)


def served(root, version, complete=True):
    folder = root / str(version)
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.index").write_bytes(b"index-" + str(version).encode())
    if complete:
        (folder / "saved_model.pb").write_bytes(b"graph-" + str(version).encode())
    return folder


def run_component(serving_dir, out_dir):
    from tfx.types import standard_artifacts

    model = standard_artifacts.Model()
    model.uri = str(out_dir)
    LatestServedModel.EXECUTOR_SPEC.executor_class().Do({}, {"baseline_model": [model]},
                                                         {"serving_dir": str(serving_dir)})
    return model


def test_newest_complete_version_skips_half_pushed_and_foreign_folders(tmp_path):
    served(tmp_path, 100)
    served(tmp_path, 250)
    served(tmp_path, 300, complete=False)   # the Pusher copies saved_model.pb last
    (tmp_path / "tmp-upload").mkdir()
    assert newest_complete_version(str(tmp_path)) == "250"
    assert newest_complete_version(str(tmp_path / "missing")) is None


def test_copies_the_served_model_where_the_evaluator_reads_a_model(tmp_path):
    from tfx.utils import path_utils

    serving = tmp_path / "serving"
    served(serving, 1700000000)
    served(serving, 1700000500)
    model = run_component(serving, tmp_path / "out")
    model_dir = path_utils.serving_model_path(model.uri)
    assert open(f"{model_dir}/saved_model.pb", "rb").read() == b"graph-1700000500"
    assert open(f"{model_dir}/variables/variables.index", "rb").read() == b"index-1700000500"
    assert model.get_string_custom_property(VERSION_PROPERTY) == "1700000500"
    assert model.get_string_custom_property(SOURCE_PROPERTY) == str(serving / "1700000500")
    assert not model.has_custom_property(ABSENT_PROPERTY)


def test_nothing_served_yet_marks_the_baseline_absent(tmp_path):
    model = run_component(tmp_path / "never-pushed", tmp_path / "out")
    assert model.get_int_custom_property(ABSENT_PROPERTY) == 1
    assert not (tmp_path / "out").exists()
