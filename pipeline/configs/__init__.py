"""Typed configuration (PipelineConfig) and the curated data schema (schema.pbtxt)."""
from pipeline.configs.pipeline_config import MODEL_FAMILIES, SCHEMA_DIR, PipelineConfig, load_config_file

__all__ = ["MODEL_FAMILIES", "SCHEMA_DIR", "PipelineConfig", "load_config_file"]
