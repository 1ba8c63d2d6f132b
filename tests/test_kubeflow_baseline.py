"""LatestServedModel hands the Evaluator the newest served model that is complete and loads, or
says there is none."""
import filecmp
import logging

from components.baseline_resolver import ABSENT_PROPERTY, SOURCE_PROPERTY, VERSION_PROPERTY, LatestServedModel
from test_serving_dir import plant, tiny_models  # noqa: F401  (the shared module-scoped fixture)


def run_component(serving_dir, out_dir):
    from tfx.types import standard_artifacts

    model = standard_artifacts.Model()
    model.uri = str(out_dir)
    LatestServedModel.EXECUTOR_SPEC.executor_class().Do({}, {"baseline_model": [model]},
                                                         {"serving_dir": str(serving_dir)})
    return model


def baseline_dir(model):
    from tfx.utils import path_utils

    return path_utils.serving_model_dir(model.uri)


def same_files(a, b):
    comparison = filecmp.dircmp(a, b)
    return not (comparison.left_only or comparison.right_only or comparison.diff_files)


def test_copies_the_served_model_where_the_evaluator_reads_a_model(tmp_path, tiny_models):
    serving = tmp_path / "serving"
    plant(serving, 1700000000, tiny_models(0.2))
    newest = plant(serving, 1700000500, tiny_models(0.7))
    plant(serving, 1700000900, tiny_models(0.9), marker=False, empty_graph=True)  # incomplete: not a baseline
    (serving / ".staging-1700001000-1700001000-ab").mkdir()
    model = run_component(serving, tmp_path / "out")
    assert same_files(baseline_dir(model), newest)
    assert same_files(f"{baseline_dir(model)}/variables", newest / "variables")
    assert model.get_string_custom_property(VERSION_PROPERTY) == "1700000500"
    assert model.get_string_custom_property(SOURCE_PROPERTY) == str(newest)
    assert not model.has_custom_property(ABSENT_PROPERTY)


def test_a_newest_version_that_does_not_load_is_skipped(tmp_path, tiny_models, caplog):
    serving = tmp_path / "serving"
    good = plant(serving, 100, tiny_models(0.2))
    plant(serving, 200, tiny_models(0.7), empty_graph=True)  # marked complete, but 0 bytes of graph
    with caplog.at_level(logging.WARNING):
        model = run_component(serving, tmp_path / "out")
    assert model.get_string_custom_property(VERSION_PROPERTY) == "100"
    assert same_files(baseline_dir(model), good)
    assert any("version 200" in m and "does not load" in m for m in caplog.messages)


def test_nothing_served_yet_marks_the_baseline_absent(tmp_path):
    model = run_component(tmp_path / "never-pushed", tmp_path / "out")
    assert model.get_int_custom_property(ABSENT_PROPERTY) == 1
    assert not (tmp_path / "out").exists()


def test_every_version_broken_marks_the_baseline_absent_with_a_warning(tmp_path, tiny_models, caplog):
    serving = tmp_path / "serving"
    plant(serving, 100, tiny_models(0.2), empty_graph=True)
    plant(serving, 200, tiny_models(0.7), empty_graph=True)
    with caplog.at_level(logging.WARNING, logger="imdb.baseline"):
        model = run_component(serving, tmp_path / "out")
    assert model.get_int_custom_property(ABSENT_PROPERTY) == 1
    assert not model.has_custom_property(VERSION_PROPERTY) and not (tmp_path / "out").exists()
    assert "none of the 2 complete versions" in " ".join(caplog.messages)
