"""The pipeline's whole configuration, in one typed place.

Every knob the pipeline, the CLI and the Kubeflow runner read lives here; nothing reads module
globals or home-directory paths. A config can come from defaults, a JSON/YAML file
(`--config FILE`) and CLI flags, in that order of precedence (flags win).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional

from models import storage
from models.errors import UserError
from models.settings import GRU_ARCHITECTURES, LEARNING_RATE_SCHEDULES

MODEL_FAMILIES = ("gru", "hub")
SCHEMA_DIR = str(Path(__file__).resolve().parent)  # holds schema.pbtxt, the curated schema
# A Kubernetes memory quantity (kubeflow.settings.memory_gb converts it for the compiled spec).
_MEMORY = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?")


def _setting(default: Any, help: str, *, low: Optional[float] = None,  # pylint: disable=redefined-builtin
             high: Optional[float] = None, above: Optional[float] = None) -> Any:
    """A field with its one line of `--help` text (the flag's help is written only here) and its
    range: `low <= value <= high`, `value > above` (each optional; None, where allowed, is not
    compared). `validate` checks every field's type (from its annotation) and then its range."""
    metadata = {"help": help, "low": low, "high": high, "above": above}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


FRACTION = {"low": 0.0, "high": 1.0}   # shares, thresholds and margins of accuracy/AUC: in [0, 1]
COUNT = {"low": 0}                      # how many of something: 0 or more
AT_LEAST_ONE = {"low": 1}
POSITIVE = {"above": 0.0}
_NUMBER_NAMES = {int: "a whole number (int)", float: "a number (float)", bool: "true or false (bool)",
                 str: "a string"}


def _type_name(hint: Any) -> str:
    """How a field's annotation reads in an error message."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and type(None) in args:
        inner = [arg for arg in args if arg is not type(None)]
        return _type_name(inner[0]) + " or null"
    if typing.get_origin(hint) in (list, List):
        item = args[0] if args else Any
        return "a list" if item is Any else f"a list of {_type_name(item).replace('a ', '', 1)}s"
    return _NUMBER_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def _type_matches(value: Any, hint: Any) -> bool:
    """Does `value` (as JSON or YAML gives it) have the annotated type? bool is not a number and
    a number is not a string; an int is a float."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return any(_type_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if origin in (list, List):
        return isinstance(value, list) and all(_type_matches(item, args[0] if args else Any) for item in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'mapping'} {json.dumps(value, default=str)[:60]}"
    return repr(value)


def _type_problem(name: str, value: Any, hint: Any) -> str:
    problem = f"{name} must be {_type_name(hint)}, not {_shown(value)}"
    plain = [arg for arg in typing.get_args(hint) if arg is not type(None)] or [hint]
    if isinstance(value, str) and plain[0] in (int, float):
        try:
            plain[0](value.strip())
        except ValueError:
            return problem
        return problem + f": write {value.strip()} without quotes"
    if plain[0] is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return problem + f": put {value} in quotes"
    return problem


def _range_problem(name: str, value: Any, low: Any, high: Any, above: Any) -> Optional[str]:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if low is not None and high is not None and not low <= value <= high:
        return f"{name} must be between {low:g} and {high:g}, not {value}"
    if low is not None and high is None and value < low:
        return (f"{name} must not be negative, not {value}" if low == 0
                else f"{name} must be at least {low:g}, not {value}")
    if above is not None and not value > above:
        return f"{name} must be greater than {above:g}, not {value}"
    return None


# Locations that may be object-store URIs.
URI_FIELDS = ("data_root", "pipeline_root", "serving_dir", "pretrained_embeddings", "hub_handle")


@dataclasses.dataclass
class PipelineConfig:
    """Settings of one pipeline run. Paths may be local or object-store URIs (gs://, s3://, minio://)."""

    pipeline_name: str = _setting("imdb-sentiment", "pipeline name in ML Metadata and on Kubeflow")
    data_root: str = _setting("", "aclImdb folder, a text,label CSV, or a folder of train/test CSVs")
    workdir: str = _setting("workdir", "holds pipeline_root, metadata and serving unless those are set")
    pipeline_root: Optional[str] = _setting(None, "where artifacts go (default <workdir>/pipeline_root)")
    metadata_path: Optional[str] = _setting(None, "ML Metadata SQLite file (default <workdir>/metadata.sqlite)")
    serving_dir: Optional[str] = _setting(None, "TF Serving folder for blessed models (default <workdir>/serving)")
    schema_dir: str = _setting(SCHEMA_DIR, "folder holding the curated schema.pbtxt")

    # ExampleGen
    eval_percent: int = _setting(10, "percent of the train folder carved out as the eval split", low=1, high=50)
    max_rejected_fraction: float = _setting(
        0.01, "share of unreadable/empty reviews tolerated before the run fails", **FRACTION)
    input_fingerprint: str = _setting("", "digest of the input files; the runner fills it so changed data is re-read")
    max_review_bytes: int = _setting(
        64_000, "largest review accepted, in bytes (the longest IMDB review has ~14,000)", **AT_LEAST_ONE)

    # Data gates (before Transform)
    min_train_examples: int = _setting(1_000, "fewest reviews the train split may have", **COUNT)
    min_eval_examples: int = _setting(100, "fewest reviews the eval split may have", **COUNT)
    min_label_fraction: float = _setting(
        0.2, "smallest share either label may have in the train and eval splits", **FRACTION)
    label_drift_threshold: float = _setting(
        0.1, "largest L-infinity distance of the label distribution from the served model's training data", **FRACTION)
    length_drift_threshold: float = _setting(
        0.1, "largest L-infinity distance of the review-length buckets from the served model's training data",
        **FRACTION)

    # Transform
    vocab_size: int = _setting(30_000, "most frequent words kept in the vocabulary", **AT_LEAST_ONE)
    oov_buckets: int = _setting(1_000, "hash buckets for words outside the vocabulary", **AT_LEAST_ONE)
    max_tokens: int = _setting(600, "tokens kept per review (a longer one keeps its head and its tail)", **AT_LEAST_ONE)
    tail_share: float = _setting(
        0.25, "share of max_tokens taken from the end of a longer review, the rest from its start (0: start only)",
        **FRACTION)

    # Trainer
    model: str = _setting("gru", "model family: gru (masked GRU) or hub (TF Hub text embedding)")
    gru_architecture: str = _setting(
        "pooled_bigru", "GRU family layers: pooled_bigru (bidirectional GRU, masked max+mean pooling) or seed "
                        "(the original GRU -> GRU -> last state)")
    wide_tower: bool = _setting(
        True, "add an NB-weighted linear tower over hashed word unigrams and bigrams beside the model (wide and deep)")
    embedding_dim: int = _setting(
        128, "GRU embedding width (the vectors' width with --pretrained-embeddings)", **AT_LEAST_ONE)
    gru_units: int = _setting(128, "units of each GRU layer", **AT_LEAST_ONE)
    pretrained_embeddings: Optional[str] = _setting(None, "GloVe/word2vec text file to initialise the GRU embedding")
    hub_handle: Optional[str] = _setting(None, "TF Hub URL or local module folder (needed by --model hub)")
    hub_sha256: Optional[str] = _setting(None, "SHA-256 the Hub module's content must have (imdb-pipeline hub digest DIR)")
    hub_trainable: bool = _setting(False, "fine-tune the Hub module's embedding")
    epochs: int = _setting(3, "most epochs to train (early stopping may end sooner)", **AT_LEAST_ONE)
    steps_per_epoch: Optional[int] = _setting(
        None, "cap on steps per epoch (default: the whole train split)", **AT_LEAST_ONE)
    evaluations_per_epoch: int = _setting(2, "evaluations (and early-stopping checks) per epoch", **AT_LEAST_ONE)
    early_stopping_patience: int = _setting(
        1, "epochs without eval-loss improvement before stopping (0 = off)", **COUNT)
    batch_size: int = _setting(64, "reviews per training batch", **AT_LEAST_ONE)
    learning_rate: float = _setting(3e-3, "Adam learning rate (the starting one with the cosine schedule)", **POSITIVE)
    learning_rate_schedule: str = _setting(
        "cosine", "cosine: decays to 0 over epochs x steps, so the last rounds take small steps; or constant")
    seed: int = _setting(42, "random seed of shuffling and initialisation", **COUNT)
    deterministic_ops: bool = _setting(
        False, "make TensorFlow's ops deterministic too (tf.config.experimental.enable_op_determinism), so a seed "
               "repeats its training exactly on the same machine and software; slower (bench/determinism.py)")
    serving_xla: bool = _setting(
        False, "compile the GRU of the raw-text serving signature with XLA (about 4x faster a review on CPU, "
               "warmup requests included); TF Serving then needs --xla_cpu_compilation_enabled=true")

    # Evaluator
    accuracy_threshold: float = _setting(0.80, "eval accuracy a model needs to be blessed", **FRACTION)
    auc_threshold: float = _setting(0.85, "eval AUC a model needs to be blessed", **FRACTION)
    baseline_margin: float = _setting(
        0.01, "how much worse than the best recently served model (accuracy and AUC) is still blessed", **FRACTION)
    min_slice_examples: int = _setting(50, "slices with fewer eval reviews are reported but not gated", **COUNT)
    canary_max_seconds: float = _setting(
        5.0, "longest the serving canaries' call may take in a fresh process", **POSITIVE)
    canaries: List[List[Any]] = _setting(
        [], "[text, expected label 1/0 or null] pairs the candidate must get right before a push "
            "(empty: built-in clear IMDB reviews); set it in a --config file")

    # Pusher
    keep_versions: int = _setting(
        5, "complete model versions kept in the serving folder (the newest is never removed)", **AT_LEAST_ONE)

    # Runtime
    beam_args: List[str] = _setting([], "extra Beam pipeline options")
    enable_cache: bool = _setting(True, "reuse results of components whose inputs did not change")

    # Kubeflow pod sizes (`compile` only; a local run ignores them). Each number is both the
    # request and the limit of the task's container; 0 or "" leaves that resource unset.
    transform_cpu: float = _setting(2.0, "CPU cores of the Transform task on Kubeflow (request and limit; 0: unset)")
    transform_memory: str = _setting(
        "4Gi", "memory of the Transform task on Kubeflow, a Kubernetes quantity (request and limit; '': unset)")
    trainer_cpu: float = _setting(2.0, "CPU cores of the Trainer task on Kubeflow (request and limit; 0: unset)")
    trainer_memory: str = _setting(
        "6Gi", "memory of the Trainer task on Kubeflow, a Kubernetes quantity (request and limit; '': unset)")

    def __post_init__(self) -> None:
        self._check_types()  # before anything compares or normalises a value
        hints = _hints()
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            # A JSON/YAML file or --set writes 0 for 0.0; TFX's parameter type check would refuse the int later.
            if hints[field.name] is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, field.name, float(value))
        # minio://bucket/key (a stock KFP install's store) is s3://bucket/key to TensorFlow and Beam.
        for name in URI_FIELDS:
            value = getattr(self, name)
            if value and storage.scheme_of(value) == "minio":
                object.__setattr__(self, name, storage.normalize(value))
        self.validate()

    # -- derived paths -------------------------------------------------------------------------
    @property
    def tail_tokens(self) -> int:
        """Tokens a review longer than max_tokens keeps from its end."""
        return round(self.max_tokens * self.tail_share)

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
    def _check_types(self) -> None:
        """Each value has its field's annotated type (a path object is taken as its string); the
        first check, so that nothing below compares a string with a number."""
        problems = []
        for name, hint in _hints().items():
            value = getattr(self, name)
            if isinstance(value, os.PathLike) and _type_matches("", hint):
                object.__setattr__(self, name, os.fspath(value))
            elif not _type_matches(value, hint):
                problems.append(_type_problem(name, value, hint))
        if problems:
            raise UserError("Invalid configuration: " + "; ".join(problems) + ".")

    def validate(self) -> None:
        """Refuses settings that would only fail deep inside a component, minutes later: first each
        value's type (from the field's annotation), then its range (the field's low/high/above),
        then what settings require of each other."""
        self._check_types()
        problems = []
        for field in dataclasses.fields(self):
            meta = field.metadata
            problem = _range_problem(field.name, getattr(self, field.name), meta.get("low"), meta.get("high"),
                                     meta.get("above"))
            if problem:
                problems.append(problem)
        if self.model not in MODEL_FAMILIES:
            problems.append(f"model must be one of {', '.join(MODEL_FAMILIES)}, not {self.model!r}")
        if self.gru_architecture not in GRU_ARCHITECTURES:
            problems.append(f"gru_architecture must be one of {', '.join(GRU_ARCHITECTURES)}, "
                            f"not {self.gru_architecture!r}")
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            problems.append(f"learning_rate_schedule must be one of {', '.join(LEARNING_RATE_SCHEDULES)}, "
                            f"not {self.learning_rate_schedule!r}")
        if self.serving_xla and self.model != "gru":
            problems.append("serving_xla compiles the GRU tower; the hub family has none (leave it off)")
        if self.model == "hub" and not self.hub_handle:
            problems.append("the hub model needs hub_handle (a TF Hub URL or a local module path)")
        if self.hub_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.hub_sha256):
            problems.append("hub_sha256 must be 64 lower-case hexadecimal characters")
        if 0.5 < self.min_label_fraction <= 1.0:
            problems.append("min_label_fraction must be at most 0.5 (two labels cannot both have more)")
        for name in ("transform_cpu", "trainer_cpu"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                problems.append(f"{name} must be a number of CPU cores such as 2 or 0.5 (0: unset), not {value!r}")
        for name in ("transform_memory", "trainer_memory"):
            value = getattr(self, name)
            match = _MEMORY.fullmatch(value) if isinstance(value, str) else None
            if not isinstance(value, str) or (value and not (match and float(match.group(1)) > 0)):
                problems.append(f"{name} must be a Kubernetes memory quantity such as 4Gi, 512Mi or 6G "
                                f"('': unset), not {value!r}")
        if problems:
            raise UserError("Invalid configuration: " + "; ".join(problems) + ".")

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def defaults(cls) -> Dict[str, Any]:
        """{field: default}: what a run uses for settings nobody gave."""
        return {field.name: (field.default_factory() if field.default_factory is not dataclasses.MISSING
                             else field.default) for field in dataclasses.fields(cls)}

    @classmethod
    def help(cls, name: str) -> str:
        return {field.name: field.metadata.get("help", "") for field in dataclasses.fields(cls)}[name]

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


@functools.lru_cache(maxsize=None)
def _hints() -> Dict[str, Any]:
    """{field: its annotation as a type} (the annotations are strings: `from __future__ import annotations`)."""
    return typing.get_type_hints(PipelineConfig)


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
