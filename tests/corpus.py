"""Small synthetic IMDB-like corpora in the real aclImdb layout, made by the tests themselves."""
from __future__ import annotations

import random
from pathlib import Path

POSITIVE = ["great", "excellent", "wonderful", "loved", "brilliant", "superb", "amazing", "touching", "fun"]
NEGATIVE = ["terrible", "awful", "boring", "worst", "hated", "dull", "waste", "stupid", "poor"]
NEUTRAL = ["the", "movie", "film", "plot", "actor", "story", "scene", "director", "and", "was", "it", "this",
           "a", "of", "cast", "music", "ending", "script", "camera", "with"]


def review_text(rng: random.Random, positive: bool) -> str:
    cue = POSITIVE if positive else NEGATIVE
    words = [rng.choice(NEUTRAL) for _ in range(rng.randint(8, 30))]
    for _ in range(rng.randint(2, 4)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(cue))
    text = " ".join(words).capitalize() + "."
    if rng.random() < 0.3:
        text = text.replace(" ", "<br /><br />", 1)
    return text


def write_aclimdb(root: Path, n_train: int = 300, n_test: int = 40, seed: int = 0) -> Path:
    """root/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt; returns the aclImdb folder."""
    rng = random.Random(seed)
    base = Path(root) / "aclImdb"
    for split, count in (("train", n_train), ("test", n_test)):
        for index in range(count):
            positive = index % 2 == 0
            rating = rng.randint(7, 10) if positive else rng.randint(1, 4)
            folder = base / split / ("pos" if positive else "neg")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index}_{rating}.txt").write_text(review_text(rng, positive), encoding="utf-8")
    return base
