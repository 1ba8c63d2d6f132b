"""Drops the functions an exported SavedModel never calls from its function library.

A model trained in the same process carries functions no signature reaches: for each GRU layer
Keras traces a cuDNN variant beside the CPU one, and training adds their forward/backward pairs
and gradient branches. The wide-and-deep export held 148 functions (1.8 MB), 60 of them (1.1 MB)
unreachable; a loader converts every one to a graph, so loading took 1.55 s instead of 0.79 s
and the first call 1.11 s instead of 0.77 s (bench/signature.py, medians of 3; BENCHMARKS.md,
issue 10). TFMA loads two models per evaluation, the canary one, every server and `predict` one.

What stays: every function named by a node of the graph or of a kept function (as the node's op
or in any function-valued attribute: call targets, cond branches, loop bodies) and every concrete
function of the object graph. The cost: a GPU server cannot swap in the cuDNN kernel (the CPU
GRU runs there too); this project serves on CPU.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator, Set, Tuple

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, node_def_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.saved_model import fingerprinting_utils  # pylint: disable=no-name-in-module

SAVED_MODEL_FILE = "saved_model.pb"


def _attr_functions(value: attr_value_pb2.AttrValue) -> Iterator[str]:
    if value.HasField("func"):
        yield value.func.name
        for nested in value.func.attr.values():
            yield from _attr_functions(nested)
    for function in value.list.func:
        yield function.name


def _called(nodes: Iterable[node_def_pb2.NodeDef], library_names: Set[str]) -> Set[str]:
    called: Set[str] = set()
    for node in nodes:
        if node.op in library_names:
            called.add(node.op)
        for value in node.attr.values():
            called.update(_attr_functions(value))
    return called


def reachable_functions(saved_model: saved_model_pb2.SavedModel) -> Set[str]:
    """Names of the library functions the graph or the object graph can reach."""
    meta_graph = saved_model.meta_graphs[0]
    library = meta_graph.graph_def.library
    names = {function.signature.name for function in library.function}
    calls = {function.signature.name: _called(function.node_def, names)
             | {name for value in function.attr.values() for name in _attr_functions(value)}
             for function in library.function}
    for gradient in library.gradient:  # a kept function keeps its registered gradient
        calls.setdefault(gradient.function_name, set()).add(gradient.gradient_func)
    pending = list(_called(meta_graph.graph_def.node, names) | set(meta_graph.object_graph_def.concrete_functions))
    reached: Set[str] = set()
    while pending:
        name = pending.pop()
        if name in reached or name not in calls:
            continue
        reached.add(name)
        pending.extend(calls[name])
    return reached


def prune_unreachable_functions(export_dir: str) -> Tuple[int, int]:
    """Rewrites `export_dir`'s saved_model.pb (and its fingerprint) without unreachable functions;
    returns (functions kept, functions before)."""
    path = os.path.join(export_dir, SAVED_MODEL_FILE)
    saved_model = saved_model_pb2.SavedModel.FromString(tf.io.gfile.GFile(path, "rb").read())
    if len(saved_model.meta_graphs) != 1:
        return (0, 0)  # not a TF2 export: nothing of ours to prune
    library = saved_model.meta_graphs[0].graph_def.library
    before = len(library.function)
    reached = reachable_functions(saved_model)
    if len(reached) == before:
        return (before, before)
    kept = [function for function in library.function if function.signature.name in reached]
    del library.function[:]
    library.function.extend(kept)
    gradients = [gradient for gradient in library.gradient if gradient.function_name in reached]
    del library.gradient[:]
    library.gradient.extend(gradients)
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(saved_model.SerializeToString())
    fingerprinting_utils.write_fingerprint(export_dir)  # its checksum covers saved_model.pb
    return (len(kept), before)
