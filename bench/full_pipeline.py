"""Benchmark: the whole pipeline on the full IMDB data, then accuracy on the 25,000 test reviews.

Not a test. Needs ../shared/data (or --data). Records wall time per component, peak memory and
test accuracy of the pushed model, prints them and appends a section to BENCHMARKS.md. The test
accuracy is given twice: on the whole test folder, and on it without exact duplicates (the same
normalisation as ImdbExampleGen: a test text also in train removed, repeated test copies once).

    .venv/bin/python bench/full_pipeline.py --model gru --pretrained-embeddings ../shared/data/glove/glove.6B.50d.top100k.txt.gz
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recording import append_section, machine, peak_rss_mib  # noqa: E402
from components.imdb_reader import (Review, detect_layout, list_aclimdb, read_review_file,  # noqa: E402
                                    survivor_key, text_digest)
from pipeline.cli import resolve_data  # noqa: E402
from pipeline.configs import PipelineConfig  # noqa: E402
from pipeline.local_runner import run_local  # noqa: E402
from pipeline.predict import Predictor, newest_model_dir  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "imdb" / "aclImdb_v1.labeled.tar.gz"



def read_split(data_root: str, split: str, max_review_bytes: int) -> List[Review]:
    """The readable reviews of one aclImdb folder (train or test), by the pipeline's own rules."""
    layout = detect_layout(data_root)
    listing = list_aclimdb(layout.root, [split])
    records = [read_review_file(path, label, split, max_review_bytes) for path, label, _ in listing.reviews]
    return [record for record in records if isinstance(record, Review)]


def deduplicate_test(test: Sequence[Review], train: Sequence[Review]) -> Tuple[List[Review], Dict[str, int]]:
    """The test reviews without exact duplicates (ImdbExampleGen's normalisation): a test text
    that also occurs in train is removed, and of several test copies of one text one is kept
    (the one ImdbExampleGen keeps). Returns the kept reviews and what was removed, by kind."""
    train_digests = {text_digest(review.text) for review in train}
    kept: Dict[str, Review] = {}
    removed = {"also_in_train": 0, "within_test": 0}
    for review in sorted(test, key=survivor_key):
        digest = text_digest(review.text)
        if digest in train_digests:
            removed["also_in_train"] += 1
        elif digest in kept:
            removed["within_test"] += 1
        else:
            kept[digest] = review
    return list(kept.values()), removed


def correct_flags(predict: Callable[[List[str]], List[Tuple[float, int]]], reviews: Sequence[Review],
                  batch_size: int = 500) -> Dict[str, bool]:
    """{review_id: predicted label == label} with `predict` (raw texts -> [(probability, label)])."""
    flags: Dict[str, bool] = {}
    for start in range(0, len(reviews), batch_size):
        batch = reviews[start:start + batch_size]
        for review, (_, label) in zip(batch, predict([r.text for r in batch])):
            flags[review.review_id] = int(label) == review.label
    return flags


def score_test_split(predict: Callable[[List[str]], List[Tuple[float, int]]], data_root: str,
                       max_review_bytes: int) -> dict:
    """Accuracy on the whole test folder and on the test folder without exact duplicates (within
    test, and test texts also in train); every review is scored once."""
    test = read_split(data_root, "test", max_review_bytes)
    deduplicated, removed = deduplicate_test(test, read_split(data_root, "train", max_review_bytes))
    started = time.time()
    flags = correct_flags(predict, test)
    return {
        "test_reviews": len(test),
        "test_accuracy": round(sum(flags.values()) / len(test), 4),
        "dedup_test_reviews": len(deduplicated),
        "dedup_test_accuracy": round(sum(flags[r.review_id] for r in deduplicated) / len(deduplicated), 4),
        "dedup_removed": removed,
        "test_scoring_seconds": round(time.time() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--workdir", default=str(ROOT / "workdir-bench"))
    parser.add_argument("--model", default="gru", choices=("gru", "hub"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pretrained-embeddings")
    parser.add_argument("--hub-handle")
    parser.add_argument("--hub-from-vectors", help="build an offline Hub module from this GloVe/word2vec file "
                                                   "(into the workdir) and use it as --hub-handle")
    parser.add_argument("--hub-trainable", action="store_true", help="fine-tune the Hub module's embedding")
    parser.add_argument("--seed", type=int, default=PipelineConfig.defaults()["seed"])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=JSON",
                        help="any other PipelineConfig setting, e.g. --set gru_architecture='\"seed\"' "
                             "--set wide_tower=false (repeatable)")
    parser.add_argument("--tag", default="", help="suffix of the result file (e.g. rerun), so a run does not "
                                                   "replace the result of the same seed")
    parser.add_argument("--label", default="", help="name of this configuration in BENCHMARKS.md")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()

    workdir = os.path.abspath(args.workdir)
    data_root = resolve_data(args.data, workdir)
    if args.hub_from_vectors:
        from models.hub_module import build_module_from_word_vectors  # pylint: disable=import-outside-toplevel

        args.hub_handle = str(build_module_from_word_vectors(
            args.hub_from_vectors, os.path.join(workdir, "hub_module"),
            num_oov_buckets=PipelineConfig.defaults()["oov_buckets"]))
    settings = dict(model=args.model, epochs=args.epochs, pretrained_embeddings=args.pretrained_embeddings,
                    hub_handle=args.hub_handle, hub_trainable=args.hub_trainable, accuracy_threshold=0.5,
                    seed=args.seed)
    settings.update(_setting(text) for text in args.set)  # --set wins over the named flags
    config = PipelineConfig(data_root=data_root, workdir=workdir, **settings)
    started = time.time()
    summary = run_local(config)
    pipeline_seconds = time.time() - started
    result = {
        "label": args.label or f"{args.model}{' + pretrained embeddings' if args.pretrained_embeddings else ''}",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "settings": {"seed": args.seed, **dict(_setting(text) for text in args.set)},
        "pipeline_seconds": round(pipeline_seconds, 1),
        "component_seconds": {k: v.get("seconds") for k, v in summary["components"].items()},
        "component_peak_rss_mib": {k: v.get("peak_rss_mib") for k, v in summary["components"].items()},
        "cached": [k for k, v in summary["components"].items() if v.get("cached")],
        "eval": summary.get("eval_metrics", {}).get("overall"),
        "blessed": summary.get("blessed"),
        "peak_rss_mib": round(peak_rss_mib(), 0),
    }
    predictor = Predictor(newest_model_dir(config.resolved_serving_dir))
    result.update(score_test_split(predictor.predict, data_root, config.max_review_bytes))
    print(json.dumps(result, indent=2))
    Path(workdir).mkdir(parents=True, exist_ok=True)
    name = f"bench_result-seed{args.seed}{'-' + args.tag if args.tag else ''}.json"
    (Path(workdir) / name).write_text(json.dumps(result, indent=2))
    if not args.no_record:
        append_markdown(result)
    return 0


def _setting(text: str) -> Tuple[str, object]:
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value  # a bare word: a string


def append_markdown(result: dict) -> None:
    memory = result.get("component_peak_rss_mib", {})
    components = ", ".join(f"{k} {v:.0f}s" + (f"/{memory[k] / 1024:.1f} GiB" if memory.get(k) else "")
                           for k, v in result["component_seconds"].items() if v is not None)
    ev = result["eval"] or {}
    lines = [
        f"\n### {result['label']} — {result['date']}\n",
        f"- machine: {result['machine']}",
        f"- command: `{result['command']}`",
        f"- whole pipeline: {result['pipeline_seconds'] / 60:.1f} min; peak RSS {result['peak_rss_mib']:.0f} MiB",
        f"- per component: {components}",
        f"- eval split: accuracy {ev.get('accuracy', float('nan')):.4f}, AUC {ev.get('auc', float('nan')):.4f} "
        f"(n={ev.get('example_count')}); blessed: {result['blessed']}",
        f"- **test split: accuracy {result['test_accuracy']:.4f}** on {result['test_reviews']} reviews "
        f"(scored through the raw-text serving signature in {result['test_scoring_seconds']:.0f}s)",
        f"- **deduplicated test split: accuracy {result['dedup_test_accuracy']:.4f}** on "
        f"{result['dedup_test_reviews']} reviews (removed: {result['dedup_removed']['also_in_train']} also in "
        f"train, {result['dedup_removed']['within_test']} repeated copies within test)",
    ]
    append_section(lines)


if __name__ == "__main__":
    sys.exit(main())
