"""What Transform and the Trainer are told, as typed records with no defaults.

The values come from PipelineConfig (the only place a default lives) through the components'
custom_config; a missing or unknown key fails loudly here instead of falling back to a second,
possibly different default inside a worker.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Type, TypeVar

T = TypeVar("T")

GRU_ARCHITECTURES = ("seed", "pooled_bigru")  # models/gru.py builds them
LEARNING_RATE_SCHEDULES = ("constant", "cosine")  # models/trainer.py


def settings_from(cls: Type[T], values: Optional[Mapping[str, Any]], step: str) -> T:
    """`cls(**values)`, or a ValueError naming the missing and unknown keys."""
    values = dict(values or {})
    names = {field.name for field in dataclasses.fields(cls)}
    missing, unknown = sorted(names - set(values)), sorted(set(values) - names)
    if missing or unknown:
        raise ValueError(f"{step} settings do not match what it needs (missing: {', '.join(missing) or 'none'}; "
                         f"unknown: {', '.join(unknown) or 'none'}); they are built from PipelineConfig by "
                         "pipeline/pipeline.py.")
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class TransformSettings:
    vocab_size: int
    oov_buckets: int
    max_tokens: int
    tail_tokens: int
    code_fingerprint: str   # only a cache key: TFX does not hash code given by dotted path


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
    model: str
    gru_architecture: str
    wide_tower: bool
    embedding_dim: int
    gru_units: int
    pretrained_embeddings: Optional[str]
    hub_handle: Optional[str]
    hub_sha256: Optional[str]  # when set, the module's content must have this digest (models/digest.py)
    hub_trainable: bool
    epochs: int
    steps_per_epoch: Optional[int]
    early_stopping_patience: int
    evaluations_per_epoch: int
    batch_size: int
    learning_rate: float
    learning_rate_schedule: str
    seed: int
    deterministic_ops: bool
    serving_xla: bool
    oov_buckets: int
    code_fingerprint: str
    sources_digest: str     # only a cache key: the content of the vectors and Hub module, not their names
