"""Where the pipeline runs, as the explicit choices the one definition needs.

The definition (`pipeline/pipeline.py`) branches on a target's fields, never on its name, so a new
target is one entry here. kubeflow/ keeps its own tuple of compile targets (it may not import this
layer); tests/test_targets.py checks the two agree.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Dict, Tuple, Union

LOCAL, KFP, VERTEX = "local", "kfp", "vertex"


class Baseline(enum.Enum):
    """Where the Evaluator's baseline model comes from."""
    # LatestServedModel reads the serving folder: the open-source KFP backend runs no resolver task.
    SERVED_MODEL = "served_model"
    # Our resolver strategy: leaving the candidate out lets an unchanged local re-run hit the cache.
    LATEST_BLESSED_OTHER_THAN_CANDIDATE = "latest_blessed_other_than_candidate"
    # TFX's LatestBlessedModelStrategy: the only kind Vertex compiles into a resolver query.
    LATEST_BLESSED = "latest_blessed"


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    baseline: Baseline
    # Nodes whose result depends on bucket contents, not on their inputs, lose their cache option.
    uncached_bucket_readers: bool
    # Compiled to a KFP PipelineSpec (kubeflow/), rather than run here by LocalDagRunner.
    compiled: bool


TARGETS: Dict[str, Target] = {target.name: target for target in (
    Target(LOCAL, Baseline.LATEST_BLESSED_OTHER_THAN_CANDIDATE, uncached_bucket_readers=False, compiled=False),
    Target(KFP, Baseline.SERVED_MODEL, uncached_bucket_readers=True, compiled=True),
    # Vertex caches by inputs too: the gates that read the serving folder must run every time.
    Target(VERTEX, Baseline.LATEST_BLESSED, uncached_bucket_readers=True, compiled=True),
)}
COMPILE_TARGETS: Tuple[str, ...] = tuple(name for name, target in TARGETS.items() if target.compiled)


def get(target: Union[str, Target]) -> Target:
    """The registered target of that name; a Target passes through (a test may build its own)."""
    if isinstance(target, Target):
        return target
    try:
        return TARGETS[target]
    except (KeyError, TypeError):
        raise ValueError(f"unknown target {target!r}: the targets are {', '.join(TARGETS)}") from None
