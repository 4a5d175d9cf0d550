"""The collect → retrain → promote → drift loop on real data (minilm + LoRA, SST-2), bounded.

1. Old run: minilm + LoRA on 400 SST-2 training sentences, 1 epoch, validated on 200 dev
   sentences.
2. Retrain on the next 400 training sentences with replay 0.2 (100 old records), compared on
   200 other dev sentences (fixed evaluation) and on the old validation set (forgetting).
3. Drift: 150 unseen SST-2 training sentences served (unshifted) vs 150 BBC News first sentences
   (a planted domain shift), each with the old run's own predictions as the server would log.
Data are read in place from ../shared/data and written only to a temporary directory; the
numbers go to benchmarks/results/lifecycle.json. About 3 minutes on 2 idle CPU cores.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path

import tunewise
from tunewise import api

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "lifecycle.json"
N, EVAL, SERVED = 400, 200, 150  # old / new training records, each eval half, served texts


def _tsv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [
            {"text": r.get("sentence") or r["content"], "label": r["label"]}
            for r in csv.DictReader(fh, delimiter="\t")
        ]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _logs(run: Path, texts: list[str], directory: Path) -> Path:
    preds = tunewise.load(run).predict(texts)
    directory.mkdir(parents=True)
    rows = [
        {
            "id": f"r{i}",
            "time": "t",
            "route": "/v1/predict",
            "run": str(run),
            "task": "classification",
            "input": {"text": t},
            "prediction": p,
            "score": p["score"],
            "latency_ms": 1.0,
        }
        for i, (t, p) in enumerate(zip(texts, preds, strict=True))
    ]
    return _jsonl(directory / "requests-0000.jsonl", rows).parent


def main() -> None:
    import torch

    torch.set_num_threads(2)
    train, dev = _tsv(DATA / "sst2" / "train.tsv"), _tsv(DATA / "sst2" / "dev.tsv")
    tmp = Path(tempfile.mkdtemp(prefix="tunewise-lifecycle-"))
    old_train = _jsonl(tmp / "old.jsonl", train[:N])
    new = _jsonl(tmp / "new.jsonl", train[N : 2 * N])
    fixed = _jsonl(tmp / "fixed.jsonl", dev[:EVAL])
    old_val = _jsonl(tmp / "old_val.jsonl", dev[EVAL : 2 * EVAL])
    results: dict = {}
    t0 = time.perf_counter()
    old = tunewise.finetune(
        {
            "model": {"name": "minilm"},
            "task": {"type": "classification"},
            "data": {"train": str(old_train), "validation": str(old_val)},
            "strategy": {"name": "lora"},
            "training": {"epochs": 1, "num_threads": 2},
            "output_dir": str(tmp / "v1"),
        }
    ).run_dir
    results["old_train_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    cmp = api.retrain(old, new, tmp / "v2", replay=0.2, eval_data=fixed, registry=tmp / "reg")
    results["retrain_s"] = round(time.perf_counter() - t0, 1)
    results["retrain"] = {
        "mix": {k: cmp["mix"][k] for k in ("n_new", "n_replay", "replay_fraction_of_mix")},
        "sets": cmp["sets"],
        "promoted": cmp["promoted"],
        "init_from_mode": json.loads((tmp / "v2" / "tunewise.json").read_text())["init_from"][
            "mode"
        ],
    }
    served = [r["text"] for r in train[5000 : 5000 + SERVED]]
    bbc = [json.loads(x) for x in (DATA / "bbc-news" / "train.jsonl").read_text().splitlines()]
    shifted = [r["document"].split("\n")[0].split(". ")[0] for r in bbc[:SERVED]]
    for name, texts in (("unshifted", served), ("bbc_news", shifted)):
        t0 = time.perf_counter()
        report = api.drift(old, _logs(old, texts, tmp / name), tmp / f"{name}.md")
        results[f"drift_{name}"] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "retrain": report["retrain"],
            "drifted": report["drifted"],
            "length_psi": report["length"]["psi"],
            "unseen_word_rate": report["oov"]["unseen_word_rate"],
            "label_psi": report["labels"]["vs_reference_predictions"]["psi"],
            "confidence": report["confidence"],
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
