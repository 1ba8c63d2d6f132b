"""The pipeline definition follows a target's choices (pipeline/targets.py), not its name."""
import pytest

from pipeline.configs import PipelineConfig
from pipeline.targets import Baseline, Target

STAGING = Target("staging", Baseline.SERVED_MODEL, uncached_bucket_readers=False, compiled=True)


def config(**changes):
    values = dict(data_root="gs://bucket/imdb/aclImdb", serving_dir="gs://bucket/serving/imdb",
                  pipeline_root="gs://bucket/pipeline_root", pipeline_name="imdb-staging")
    values.update(changes)
    return PipelineConfig(**values)


def nodes_by_id(target):
    from pipeline.pipeline import create_components

    return {node.id: node for node in create_components(config(), target)}


def strategy(node):
    from tfx.dsl.components.common.resolver import RESOLVER_STRATEGY_CLASS

    return node.exec_properties[RESOLVER_STRATEGY_CLASS].__name__


def test_each_named_target_gets_its_baseline():
    from pipeline.pipeline import BASELINE_ID, RESOLVER_ID

    local, kfp, vertex = nodes_by_id("local"), nodes_by_id("kfp"), nodes_by_id("vertex")
    assert strategy(local[RESOLVER_ID]) == "LatestBlessedOtherThanCandidate" and BASELINE_ID not in local
    assert "candidate" in local[RESOLVER_ID].inputs
    assert strategy(vertex[RESOLVER_ID]) == "LatestBlessedModelStrategy" and BASELINE_ID not in vertex
    assert BASELINE_ID in kfp and RESOLVER_ID not in kfp


def test_the_definition_follows_the_fields_of_a_target_it_has_never_heard_of():
    from pipeline.pipeline import BASELINE_ID, DATA_GATE_ID, EXAMPLE_GEN_ID, RESOLVER_ID, create_pipeline, \
        uncached_node_ids

    ids = [node.id for node in create_pipeline(config(), target=STAGING).components]
    assert BASELINE_ID in ids and RESOLVER_ID not in ids
    assert uncached_node_ids(config(), STAGING) == [EXAMPLE_GEN_ID]
    assert DATA_GATE_ID in uncached_node_ids(config(), Target("s", Baseline.LATEST_BLESSED, True, True))


def test_uncached_nodes_are_the_bucket_readers_only_where_the_target_asks():
    from pipeline.pipeline import BASELINE_ID, BLESSING_GATE_ID, DATA_GATE_ID, EXAMPLE_GEN_ID, uncached_node_ids

    assert uncached_node_ids(config(), "kfp") == [BASELINE_ID, DATA_GATE_ID, BLESSING_GATE_ID, EXAMPLE_GEN_ID]
    assert uncached_node_ids(config(input_fingerprint="abc"), "kfp") == [BASELINE_ID, DATA_GATE_ID, BLESSING_GATE_ID]
    assert uncached_node_ids(config(), "vertex") == [DATA_GATE_ID, BLESSING_GATE_ID, EXAMPLE_GEN_ID]
    assert uncached_node_ids(config(input_fingerprint="abc"), "local") == []


def test_the_blessing_gate_is_told_the_pipeline_name():
    from pipeline.pipeline import BLESSING_GATE_ID

    assert nodes_by_id("vertex")[BLESSING_GATE_ID].exec_properties["pipeline_name"] == "imdb-staging"


def test_an_unknown_target_name_is_refused():
    from pipeline.pipeline import create_pipeline

    with pytest.raises(ValueError, match="unknown target 'gke'"):
        create_pipeline(config(), target="gke")
