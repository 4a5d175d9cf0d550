"""Multiple choice on bbc-news: which of 4 same-topic summaries belongs to a headline.

    python benchmarks/multiple_choice.py

500 seeded choice sets built from ../shared/data/bbc-news (the integration test's builder,
`tests/test_integration_choice_pretraining.py`), 400 train / 100 held out; minilm full
fine-tuning, 1 epoch, batch 8, max length 64, against minilm's zero-shot embedding similarity
(mean-pooled, cosine to the headline) on the same 100 questions. No setting was chosen on them.
Writes benchmarks/results/multiple_choice.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "multiple_choice"
sys.path.insert(0, str(ROOT / "tests"))  # the set builder and baseline live with the test

from _techniques import write_results  # noqa: E402
from test_integration_choice_pretraining import (  # noqa: E402
    bbc_choice_sets,
    choice_config,
    embedding_similarity_accuracy,
)


def main() -> None:
    import tunewise

    sets = bbc_choice_sets(500)
    train, held = sets[:400], sets[400:]
    WORK.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in (("train", train), ("validation", held)):
        paths[name] = WORK / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    load = os.getloadavg()
    start = time.perf_counter()
    result = tunewise.finetune(choice_config(paths, WORK / "run"), overwrite=True)
    wall = round(time.perf_counter() - start, 1)
    held_metrics = result.metrics["validation"]
    zs_acc, zs_mrr = embedding_similarity_accuracy(held)
    out = {
        "command": "python benchmarks/multiple_choice.py",
        "data": "bbc-news headline -> its summary among 4 same-topic summaries; 400 train, "
        "100 held out",
        "load_average_before": [round(x, 2) for x in load],
        "fine_tuned": {
            "accuracy": held_metrics["accuracy"],
            "mrr": held_metrics["mrr"],
            "chance_accuracy": held_metrics["chance_accuracy"],
            "train_seconds": result.manifest["training"]["train_seconds"],
            "wall_seconds": wall,
        },
        "zero_shot_embedding_similarity": {"accuracy": zs_acc, "mrr": zs_mrr},
    }
    write_results("multiple_choice", False, out)


if __name__ == "__main__":
    main()
