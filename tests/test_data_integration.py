"""The preparation pipeline on real data: SST-2's phrase-level training set (67,349 records).

SST-2 train holds every phrase of the treebank's sentences, so many records are exact copies or
sub-phrases of others. The counts below are what this pipeline finds (deterministic: MinHash
seed, split seed); they are reported in the data notes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunewise.cli import app

SST2 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2" / "train.tsv"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SST2.is_file(), reason=f"{SST2} not present"),
]


def test_sst2_train_duplicates(tmp_path):
    out = tmp_path / "sst2"
    args = ["data", "prepare", "--input", str(SST2), "--task", "classification"]
    args += ["--output-dir", str(out), "--clean", "all", "--dedup", "near", "--on-error", "skip"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    c = json.loads((out / "prepare.json").read_text())
    assert c["n_input"] == 67_349 and c["n_rejected"] == 0
    assert c["n_exact_duplicates"] == 371  # e.g. "unfunny" appears more than once
    assert c["n_near_duplicates"] == 19_433  # word-3-gram Jaccard >= 0.8 (sub-phrases)
    assert c["n_conflicting_groups"] == 562  # same or near-same text, both labels
    removed = (out / "removed.jsonl").read_text().splitlines()
    assert len(removed) == 371 + 19_433 + c["n_leaked_dropped"]  # every removal, with its reason
    n = c["n_input"] - 371 - 19_433 - c["n_leaked_dropped"]
    assert c["n_output"] == n == sum(c["splits"].values())
    # the split keeps SST-2's label balance (0: 43.4%) in every part
    shares = [s["labels"]["0"] / s["n_examples"] for s in c["stats"].values()]
    assert max(shares) - min(shares) < 0.002
