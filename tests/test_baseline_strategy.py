"""The local baseline: the newest blessed model other than the candidate."""
from tfx.types import standard_artifacts

from components.baseline_strategy import latest_blessed_other_than


def model(artifact_id):
    artifact = standard_artifacts.Model()
    artifact.id = artifact_id
    return artifact


def blessing(model_id, blessed):
    artifact = standard_artifacts.ModelBlessing()
    artifact.set_int_custom_property("current_model_id", model_id)
    artifact.set_int_custom_property("blessed", int(blessed))
    return artifact


def test_an_unchanged_rerun_gets_the_baseline_its_first_evaluation_had():
    models = [model(1), model(2)]
    blessings = [blessing(1, True), blessing(2, True)]
    # model 2 was evaluated against model 1 and blessed; evaluating model 2 again gives model 1 again
    chosen = latest_blessed_other_than(models, blessings, [models[1]])
    assert [m.id for m in chosen["model"]] == [1]
    assert chosen["model_blessing"][0].get_int_custom_property("current_model_id") == 1


def test_a_first_model_evaluated_again_still_has_no_baseline():
    only = model(7)
    assert latest_blessed_other_than([only], [blessing(7, True)], [only]) == {
        "model": [], "model_blessing": [], "candidate": []}


def test_a_new_candidate_is_compared_with_the_newest_blessed_model_and_unblessed_ones_are_skipped():
    models = [model(1), model(2), model(3), model(4)]
    blessings = [blessing(1, True), blessing(2, True), blessing(3, False)]
    chosen = latest_blessed_other_than(models, blessings, [models[3]])
    assert [m.id for m in chosen["model"]] == [2]
    # a rolled-back candidate (model 1 again, cached) is compared with the newer blessed model 2
    assert [m.id for m in latest_blessed_other_than(models, blessings, [models[0]])["model"]] == [2]
