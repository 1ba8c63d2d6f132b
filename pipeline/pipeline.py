"""The one pipeline definition: local runs and Kubeflow compiles both come from `create_pipeline`.
Where it runs is a Target (pipeline/targets.py): explicit choices, never a name branched on.

ImdbExampleGen -> StatisticsGen -> ImportSchemaGen (curated schema) -> ExampleValidator
-> DataValidationGate -> Transform -> Trainer -> (latest blessed model) -> Evaluator -> Pusher.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.orchestration import pipeline as tfx_pipeline

from components.baseline_resolver import LatestServedModel
from components.baseline_strategy import LatestBlessedOtherThanCandidate
from components.blessing_gate import BlessingGate
from components.serving_canary import ServingCanary, canaries_parameter
from components.pusher import IdempotentPusher
from components.imdb_example_gen import ImdbExampleGen
from components.validation_gate import DataValidationGate
from models import features
from models.digest import content_digest
from models.settings import TrainerSettings, TransformSettings
from pipeline import targets
from pipeline.configs import PipelineConfig
from pipeline.targets import Baseline, Target

PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"
EVALUATOR_MODULE = "components.evaluator_extractors"  # its custom_extractors regroup TFMA's batches
SCHEMA_FILE = "schema.pbtxt"
RESOLVER_ID = "latest_blessed_model_resolver"
BASELINE_ID = "LatestServedModel"
DATA_GATE_ID = "DataValidationGate"      # reads the served model's training statistics
BLESSING_GATE_ID = "BlessingGate"        # reads the served models' recorded metrics
CANARY_ID = "ServingCanary"
EXAMPLE_GEN_ID = "ImdbExampleGen"
_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

log = logging.getLogger("imdb.pipeline")


# Code each step runs by dotted path. TFX does not hash such code (it does hash a module_file), so
# its digest goes into the step's custom_config: changed code, no stale cache hit.
TRANSFORM_CODE = ("preprocessing.py", "features.py", "text.py", "settings.py")


def code_fingerprint(file_names: Optional[tuple] = None) -> str:
    """Digest of the named files in models/ (all of them when None)."""
    digest = hashlib.sha256()
    paths = sorted(_MODELS_DIR.glob("*.py")) if file_names is None else [_MODELS_DIR / n for n in file_names]
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _settings_for(record_type: type, config: PipelineConfig, **derived: Any) -> Dict[str, Any]:
    """The record's fields valued from the config (the keys are never listed twice), plus the
    derived cache keys the config does not hold."""
    values = {field.name: getattr(config, field.name) for field in dataclasses.fields(record_type)
              if field.name not in derived}
    return dataclasses.asdict(record_type(**values, **derived))


def sources_digest(config: PipelineConfig) -> str:
    """Content, not names, of the Trainer's outside inputs: a changed vector file or Hub module at
    the same path must not be served from the cache. A module that cannot be read from here
    (a tfhub.dev URL) is keyed by --hub-sha256 when given, else by its name, with a warning."""
    parts = []
    if config.pretrained_embeddings:
        parts.append("vectors:" + content_digest(config.pretrained_embeddings))
    if config.hub_handle:
        if config.hub_sha256:
            parts.append("hub:" + config.hub_sha256)
        elif tf.io.gfile.exists(config.hub_handle):
            parts.append("hub:" + content_digest(config.hub_handle))
        else:
            log.warning("cannot read %s from here to pin its content; pass --hub-sha256 so that a changed "
                        "module is not mistaken for the cached one", config.hub_handle)
            parts.append("hub-name:" + config.hub_handle)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def transform_settings(config: PipelineConfig) -> Dict[str, Any]:
    return _settings_for(TransformSettings, config, code_fingerprint=code_fingerprint(TRANSFORM_CODE),
                         tail_tokens=config.tail_tokens)


def trainer_settings(config: PipelineConfig) -> Dict[str, Any]:
    return _settings_for(TrainerSettings, config, code_fingerprint=code_fingerprint(),
                         sources_digest=sources_digest(config))


def eval_config() -> tfma.EvalConfig:
    """Metrics on the eval split, overall and per review-length bucket. No thresholds: TFMA cannot
    skip small slices nor compare with the best recent model, so BlessingGate decides (and an
    Evaluator without thresholds writes no `blessed` property the baseline resolver could match)."""
    return tfma.EvalConfig(
        # tf_generic: call the examples signature as exported. Left to detect, TFMA loads the model as
        # Keras (tf_keras) and re-evaluates it through Keras: 126 s instead of 22 s on 2,460 reviews.
        model_specs=[tfma.ModelSpec(signature_name=features.EXAMPLES_SIGNATURE, label_key=features.LABEL,
                                    prediction_key=features.PROBABILITY, model_type=tfma.TF_GENERIC)],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["length_bucket"])],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="BinaryAccuracy"),
            tfma.MetricConfig(class_name="AUC"),
            tfma.MetricConfig(class_name="Precision"),
            tfma.MetricConfig(class_name="Recall"),
        ])])


def _baseline_resolver(baseline: Baseline, candidate: Any) -> Any:
    """The resolver node that finds the newest blessed model in ML Metadata."""
    channels = dict(model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
                    model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing))
    if baseline is Baseline.LATEST_BLESSED_OTHER_THAN_CANDIDATE:
        resolver = tfx.dsl.Resolver(strategy_class=LatestBlessedOtherThanCandidate, candidate=candidate, **channels)
    else:
        resolver = tfx.dsl.Resolver(strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy, **channels)
    return resolver.with_id(RESOLVER_ID)


def create_components(config: PipelineConfig, target: Union[str, Target] = targets.LOCAL) -> List[Any]:
    """All nodes in topological order, for a target of pipeline/targets.py (or its name)."""
    target = targets.get(target)
    nodes: List[Any] = []
    baseline_model = None
    if target.baseline is Baseline.SERVED_MODEL:
        served = LatestServedModel(serving_dir=config.resolved_serving_dir).with_id(BASELINE_ID)
        nodes.append(served)
        baseline_model = served.outputs["baseline_model"]
    example_gen = ImdbExampleGen(input_base=config.data_root, eval_percent=config.eval_percent,
                                 max_rejected_fraction=config.max_rejected_fraction,
                                 input_fingerprint=config.input_fingerprint,
                                 max_review_bytes=config.max_review_bytes).with_id(EXAMPLE_GEN_ID)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=os.path.join(config.schema_dir, SCHEMA_FILE))
    # With the schema, the 0/1 label is counted as a category, which TFDV's drift comparator needs.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"],
                                                  schema=schema_gen.outputs["schema"])
    example_validator = tfx.components.ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                                       schema=schema_gen.outputs["schema"])
    gate = DataValidationGate(
        anomalies=example_validator.outputs["anomalies"], statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"], serving_dir=config.resolved_serving_dir,
        min_train_examples=config.min_train_examples, min_eval_examples=config.min_eval_examples,
        min_label_fraction=config.min_label_fraction, label_drift_threshold=config.label_drift_threshold,
        length_drift_threshold=config.length_drift_threshold).with_id(DATA_GATE_ID)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=tfx.proto.SplitsConfig(analyze=["train"], transform=["train", "eval"]),
        custom_config=transform_settings(config))
    transform.add_upstream_node(gate)
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config=trainer_settings(config))
    nodes += [example_gen, schema_gen, statistics_gen, example_validator, gate, transform, trainer]
    if baseline_model is None:
        resolver = _baseline_resolver(target.baseline, trainer.outputs["model"])
        nodes.append(resolver)
        baseline_model = resolver.outputs["model"]
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_model,
        example_splits=["eval"],
        eval_config=eval_config(),
        module_path=EVALUATOR_MODULE)
    blessing_gate = BlessingGate(
        evaluation=evaluator.outputs["evaluation"], model=trainer.outputs["model"],
        statistics=statistics_gen.outputs["statistics"], accuracy_floor=config.accuracy_threshold,
        auc_floor=config.auc_threshold, margin=config.baseline_margin, min_slice_examples=config.min_slice_examples,
        serving_dir=config.resolved_serving_dir, recent_versions=config.keep_versions,
        pipeline_name=config.pipeline_name).with_id(BLESSING_GATE_ID)
    canary = ServingCanary(model=trainer.outputs["model"], model_blessing=blessing_gate.outputs["blessing"],
                           max_seconds=config.canary_max_seconds,
                           canaries=canaries_parameter([tuple(c) for c in config.canaries])
                           if config.canaries else canaries_parameter()).with_id(CANARY_ID)
    pusher = IdempotentPusher(
        model=trainer.outputs["model"],
        model_blessing=blessing_gate.outputs["blessing"],
        infra_blessing=canary.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.resolved_serving_dir)),
        custom_config={"keep_versions": config.keep_versions}).with_id("Pusher")
    return nodes + [evaluator, blessing_gate, canary, pusher]


def uncached_node_ids(config: PipelineConfig, target: Union[str, Target]) -> List[str]:
    """Nodes whose result depends on bucket contents, not on their inputs, so a KFP cache hit
    would be wrong: the serving-folder readers when the target asks for it, and ExampleGen unless
    the config pins a data snapshot with input_fingerprint (locally the runner fingerprints the
    files itself)."""
    target = targets.get(target)
    served = [BASELINE_ID] if target.baseline is Baseline.SERVED_MODEL else []
    ids = (served + [DATA_GATE_ID, BLESSING_GATE_ID]) if target.uncached_bucket_readers else []
    return ids + ([] if config.input_fingerprint else [EXAMPLE_GEN_ID])


def create_pipeline(config: PipelineConfig, metadata_connection_config: Optional[Any] = None,
                    target: Union[str, Target] = targets.LOCAL) -> tfx_pipeline.Pipeline:
    """The pipeline for a target of pipeline/targets.py, given as itself or by name."""
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.resolved_pipeline_root,
        components=create_components(config, target),
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_args))
