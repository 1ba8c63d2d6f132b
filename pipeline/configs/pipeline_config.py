"""The pipeline's whole configuration, in one typed place.

Every knob the pipeline, the CLI and the Kubeflow runner read lives here; nothing reads module
globals or home-directory paths. A config can come from defaults, a JSON/YAML file
(`--config FILE`) and CLI flags, in that order of precedence (flags win).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, List, Optional

from models.errors import UserError

MODEL_FAMILIES = ("gru", "hub")
SCHEMA_DIR = str(Path(__file__).resolve().parent)  # holds schema.pbtxt, the curated schema


@dataclasses.dataclass
class PipelineConfig:
    """Settings of one pipeline run. Paths may be local or object-store URIs (gs://...)."""

    pipeline_name: str = "imdb-sentiment"
    data_root: str = ""                 # aclImdb folder, a CSV (text,label), or a folder of train/test CSVs
    workdir: str = "workdir"            # holds pipeline_root, metadata and serving unless those are set
    pipeline_root: Optional[str] = None
    metadata_path: Optional[str] = None
    serving_dir: Optional[str] = None
    schema_dir: str = SCHEMA_DIR

    # ExampleGen
    eval_percent: int = 10              # share of the train folder carved out as the eval split
    max_rejected_fraction: float = 0.01  # unreadable/empty reviews tolerated before the run fails
    input_fingerprint: str = ""         # filled by the runner so changed data invalidates the cache

    # Transform
    vocab_size: int = 10_000
    oov_buckets: int = 1_000
    max_tokens: int = 400

    # Trainer
    model: str = "gru"
    embedding_dim: int = 128
    gru_units: int = 128
    pretrained_embeddings: Optional[str] = None  # GloVe/word2vec text file to initialise the GRU embedding
    hub_handle: Optional[str] = None    # URL or local path of a TF Hub text-embedding module
    hub_trainable: bool = False
    epochs: int = 3
    steps_per_epoch: Optional[int] = None  # cap per epoch (tests use a handful); None = the whole split
    evaluations_per_epoch: int = 2     # eval (and early-stopping checks) this often per epoch
    early_stopping_patience: int = 1   # epochs without eval-loss improvement before stopping (0 = off)
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 42

    # Evaluator
    accuracy_threshold: float = 0.80    # absolute lower bound for blessing
    baseline_margin: float = 0.01       # how much worse than the last blessed model is still blessed

    # Runtime
    beam_args: List[str] = dataclasses.field(default_factory=list)
    enable_cache: bool = True

    def __post_init__(self) -> None:
        self.validate()

    # -- derived paths -------------------------------------------------------------------------
    @property
    def resolved_pipeline_root(self) -> str:
        return self.pipeline_root or os.path.join(self.workdir, "pipeline_root")

    @property
    def resolved_metadata_path(self) -> str:
        return self.metadata_path or os.path.join(self.workdir, "metadata.sqlite")

    @property
    def resolved_serving_dir(self) -> str:
        return self.serving_dir or os.path.join(self.workdir, "serving")

    # -- checks --------------------------------------------------------------------------------
    def validate(self) -> None:
        """Refuses settings that would only fail deep inside a component, minutes later."""
        problems = []
        if self.model not in MODEL_FAMILIES:
            problems.append(f"model must be one of {', '.join(MODEL_FAMILIES)}, not {self.model!r}")
        if self.model == "hub" and not self.hub_handle:
            problems.append("the hub model needs hub_handle (a TF Hub URL or a local module path)")
        if not 1 <= self.eval_percent <= 50:
            problems.append(f"eval_percent must be between 1 and 50, not {self.eval_percent}")
        if not 0.0 <= self.max_rejected_fraction <= 1.0:
            problems.append("max_rejected_fraction must be between 0 and 1")
        for name in ("vocab_size", "max_tokens", "embedding_dim", "gru_units", "epochs", "batch_size",
                     "evaluations_per_epoch"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.oov_buckets < 1:
            problems.append(f"oov_buckets must be at least 1, not {self.oov_buckets}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            problems.append("steps_per_epoch must be at least 1 when set")
        if not self.learning_rate > 0:
            problems.append("learning_rate must be positive")
        if self.baseline_margin < 0:
            problems.append("baseline_margin must not be negative")
        if problems:
            raise UserError("Invalid configuration: " + "; ".join(problems) + ".")

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> List[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict) -> "PipelineConfig":
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise UserError(f"Unknown configuration keys: {', '.join(unknown)}.")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str, **overrides: Any) -> "PipelineConfig":
        """Reads a JSON or YAML file; `overrides` (e.g. CLI flags that were given) win."""
        values = load_config_file(path)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    def replace(self, **changes: Any) -> "PipelineConfig":
        return dataclasses.replace(self, **changes)


def load_config_file(path: str) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"Cannot read the config file {path}: {err.strerror or err}.") from err
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml  # pylint: disable=import-outside-toplevel

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except Exception as err:  # json.JSONDecodeError, yaml.YAMLError
        raise UserError(f"The config file {path} is not valid {'YAML' if path.endswith(('.yaml', '.yml')) else 'JSON'}: {err}.") from err
    if not isinstance(values, dict):
        raise UserError(f"The config file {path} must hold a mapping of settings, not {type(values).__name__}.")
    return values
