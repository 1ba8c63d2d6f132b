"""Wide and deep, stacked: each tower is trained alone, then one logistic regression over their
two logits, fitted on the eval split, makes the single model that is exported.

Why not joint training: the wide tower fits the train split almost perfectly within an epoch
(train accuracy 0.99+), so a GRU trained beside it, or on top of it, sees a residual of nearly
zero on the train split and learns nothing (train loss 0.017 after 50 steps, measured). No
weight of either tower is fitted to the eval split (it only chose their early-stopping points),
so it is the data their logits can be weighed on. The price: the eval figures the Evaluator then
reports for the stack are in-sample for these three numbers (and for the stopping points, as they
always were), slightly optimistic; the test split, untouched, gives the unbiased figure.
"""
from __future__ import annotations

from typing import Dict, Iterable, Sequence, Tuple

import numpy as np
import tf_keras as keras

STACK_LAYER = "stack"
RIDGE = 1e-3  # keeps the fit finite when the eval split is separable (tiny test corpora)


def fit_logistic(columns: np.ndarray, labels: np.ndarray, iterations: int = 50) -> Tuple[np.ndarray, float]:
    """Weights and bias of a logistic regression on [n, k] columns (Newton's method, small ridge)."""
    n, k = columns.shape
    design = np.hstack([columns, np.ones((n, 1))]).astype(np.float64)
    coef = np.zeros(k + 1)
    ridge = RIDGE * np.eye(k + 1)
    ridge[k, k] = 0.0
    for _ in range(iterations):
        probability = 1.0 / (1.0 + np.exp(-np.clip(design @ coef, -30, 30)))
        gradient = design.T @ (probability - labels) + ridge @ coef
        hessian = (design * (probability * (1 - probability))[:, None]).T @ design + ridge + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(hessian, gradient)
        coef -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return coef[:k].astype(np.float32), float(coef[k])


def tower_logits(scorer: keras.Model, batches: Iterable[Tuple[Dict, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray]:
    """([n, towers] logits, [n] labels) of `scorer` (inputs -> one [batch, 1] logit per tower)."""
    columns, labels = [], []
    for inputs, label in batches:
        outputs = scorer(inputs, training=False)
        columns.append(np.hstack([np.asarray(output).reshape(-1, 1) for output in outputs]))
        labels.append(np.asarray(label).reshape(-1))
    return np.vstack(columns), np.concatenate(labels)


def stacked_logit(tower_outputs: Sequence[keras.KerasTensor], weights: np.ndarray, bias: float) -> keras.KerasTensor:
    """The towers' logits combined by fixed, fitted weights (not trained further)."""
    stack = keras.layers.Dense(1, name=STACK_LAYER, trainable=False)
    merged = keras.layers.Concatenate(name="tower_logits")(list(tower_outputs))
    logit = stack(merged)
    stack.set_weights([weights.reshape(-1, 1), np.array([bias], np.float32)])
    return logit
