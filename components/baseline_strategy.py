"""The Evaluator's baseline on local runs: the newest blessed model *other than the candidate*.

TFX's LatestBlessedModelStrategy hands an unchanged re-run its own candidate as the baseline
(the run before blessed it), so the Evaluator's inputs differ from the run that evaluated that
model: no cache hit, and two copies of one model scored for nothing. Leaving the candidate out
gives an unchanged re-run exactly the inputs it had before, so the Evaluator is served from the
cache, while a retrained (or rolled-back) candidate is still compared with the newest other
blessed model. Vertex compiles only TFX's own strategies, so it keeps LatestBlessedModelStrategy.
"""
from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common import resolver

import ml_metadata as mlmd

MODEL_KEY, BLESSING_KEY, CANDIDATE_KEY = "model", "model_blessing", "candidate"
_CURRENT_MODEL_ID, _BLESSED = "current_model_id", "blessed"  # what every ModelBlessing records


def latest_blessed_other_than(models: List[types.Artifact], blessings: List[types.Artifact],
                              candidates: List[types.Artifact]) -> Dict[str, List[types.Artifact]]:
    """{model: [newest blessed model not in candidates], model_blessing: [its blessing]}, or empty lists."""
    excluded = {artifact.id for artifact in candidates}
    blessed = {blessing.get_int_custom_property(_CURRENT_MODEL_ID): blessing for blessing in blessings
               if blessing.get_int_custom_property(_BLESSED) == 1}
    for model in sorted(models, key=lambda artifact: artifact.id, reverse=True):
        if model.id in blessed and model.id not in excluded:
            return {MODEL_KEY: [model], BLESSING_KEY: [blessed[model.id]], CANDIDATE_KEY: []}
    return {MODEL_KEY: [], BLESSING_KEY: [], CANDIDATE_KEY: []}


class LatestBlessedOtherThanCandidate(resolver.ResolverStrategy):
    """Resolver strategy over the channels `model` (all models), `model_blessing` (all blessings)
    and `candidate` (this run's Trainer output)."""

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]) -> Optional[Dict[str, List[types.Artifact]]]:
        return latest_blessed_other_than(list(input_dict.get(MODEL_KEY, [])), list(input_dict.get(BLESSING_KEY, [])),
                                         list(input_dict.get(CANDIDATE_KEY, [])))
