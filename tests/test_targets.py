"""The registry of targets: explicit choices per target, the one list the kubeflow layer repeats."""
import pytest

from kubeflow import settings, spec_check
from pipeline import targets
from pipeline.targets import Baseline, Target


def test_each_target_states_its_choices():
    assert targets.get("local") == Target("local", Baseline.LATEST_BLESSED_OTHER_THAN_CANDIDATE,
                                          uncached_bucket_readers=False, compiled=False)
    assert targets.get("kfp") == Target("kfp", Baseline.SERVED_MODEL, uncached_bucket_readers=True, compiled=True)
    assert targets.get("vertex") == Target("vertex", Baseline.LATEST_BLESSED, uncached_bucket_readers=True,
                                           compiled=True)


def test_the_compile_targets_are_the_ones_the_kubeflow_layer_knows():
    assert targets.COMPILE_TARGETS == settings.TARGETS
    assert spec_check.OPEN_SOURCE_KFP == targets.KFP


@pytest.mark.parametrize("name", ["gke", "", None, "KFP"])
def test_an_unknown_target_is_refused_naming_the_known_ones(name):
    with pytest.raises(ValueError, match="unknown target .*local, kfp, vertex"):
        targets.get(name)


def test_a_target_instance_passes_through_and_cannot_be_changed():
    custom = Target("staging", Baseline.SERVED_MODEL, uncached_bucket_readers=False, compiled=True)
    assert targets.get(custom) is custom
    with pytest.raises(AttributeError):
        custom.name = "prod"  # frozen: the registry cannot be edited by a caller
