"""Multi-process training: the rank-sharded length-grouped / token-budget sampler gives every
example to exactly one rank per epoch; `torchrun --nproc_per_node 2` (gloo, CPU) runs the real
`tunewise train` command with both ranks ending on identical weights, one run directory, and
metrics that match a single process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import toy_config
from tunewise.config import load_config
from tunewise.training.batching import LengthGroupedBatchSampler, grouped_batches
from tunewise.training.recipe import finetune

WORKER = Path(__file__).with_name("ddp_worker.py")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("max_tokens", [None, 60])
def test_sampler_gives_every_example_to_exactly_one_rank_per_epoch(world, max_tokens):
    lengths = np.random.default_rng(0).integers(1, 30, size=53).tolist()
    samplers = [
        LengthGroupedBatchSampler(lengths, 4, max_tokens, seed=7, num_replicas=world, rank=r)
        for r in range(world)
    ]
    assert len({len(s) for s in samplers}) == 1  # same number of steps on every rank
    for _epoch in range(2):
        per_rank = [list(s) for s in samplers]
        assert len({len(batches) for batches in per_rank}) == 1
        seen = [i for batches in per_rank for batch in batches for i in batch]
        assert sorted(seen) == list(range(53))  # each example once across ranks
        assert all(batch for batches in per_rank for batch in batches)  # no empty batch
        for step in zip(*per_rank, strict=True):  # one global batch per step, similar lengths
            assert max(lengths[i] for b in step for i in b) - min(
                lengths[i] for b in step for i in b
            ) <= max(lengths) - min(lengths)
        if max_tokens:
            for batches in per_rank:
                for b in batches:  # the budget holds per rank (an over-long example alone)
                    assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= max_tokens + 30
    # epochs differ in order, and the global batches are a single process's with batch × world
    first, second = list(samplers[0]), list(samplers[0])
    assert first != second
    if max_tokens is None and world == 2:
        single = {frozenset(b) for b in grouped_batches(lengths, 8, None, seed=7)}
        fresh = [
            LengthGroupedBatchSampler(lengths, 4, seed=7, num_replicas=2, rank=r) for r in (0, 1)
        ]
        steps = zip(*[list(s) for s in fresh], strict=True)
        assert {frozenset(i for b in step for i in b) for step in steps} == single


def test_torchrun_two_processes_match_one_process(tiny_bert, toy_data, tmp_path):
    from transformers import AutoTokenizer

    raw = toy_config(tiny_bert, toy_data, tmp_path / "ddp-run", "lora")
    raw["training"].update(batch_size=4, epochs=2, logging_steps=1)
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    dump = tmp_path / "dump"
    dump.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": _pythonpath()}
    proc = subprocess.run(
        [*TORCHRUN, str(WORKER), str(cfg_path), str(dump)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    # both ranks end with identical parameters
    p0, p1 = torch.load(dump / "rank0.pt"), torch.load(dump / "rank1.pt")
    assert p0.keys() == p1.keys() and len(p0) > 4
    assert all(torch.equal(p0[k], p1[k]) for k in p0)

    # every training example seen exactly once per epoch across the two ranks
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    texts = [json.loads(x)["text"] for x in toy_data["train"].read_text().splitlines()]
    expected = Counter(tuple(tok(t, truncation=True, max_length=32)["input_ids"]) for t in texts)
    seen = [json.loads((dump / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(seen[0]) and all(seen[1])  # both ranks trained
    for epoch in (0, 1):
        both = Counter(tuple(ids) for rank in seen for e, ids in rank if e == epoch)
        assert both == expected

    # exactly one run directory, written once (one TensorBoard writer)
    run = tmp_path / "ddp-run"
    assert [p.parent for p in tmp_path.rglob("tunewise.json")] == [run]
    assert len(list((run / "tensorboard").glob("events.*"))) == 1
    ddp = json.loads((run / "tunewise.json").read_text())
    assert ddp["training"]["world_size"] == 2 and ddp["training"]["steps"] == 16

    # a single process with the same global batch (8): the same global batches (the sampler
    # test above), so only dropout noise and reduction order differ. Tolerance: final train
    # loss within 5 % and validation accuracy within 0.1.
    single_raw = {**raw, "output_dir": str(tmp_path / "single-run")}
    single_raw["training"] = {**raw["training"], "batch_size": 8}
    single = finetune(load_config(single_raw)).manifest
    assert single["training"]["steps"] == 16
    loss_ddp, loss_one = ddp["training"]["final_train_loss"], single["training"]["final_train_loss"]
    assert abs(loss_ddp - loss_one) <= 0.05 * loss_one, (loss_ddp, loss_one)
    acc_ddp = ddp["metrics"]["validation"]["accuracy"]
    acc_one = single["metrics"]["validation"]["accuracy"]
    assert abs(acc_ddp - acc_one) <= 0.1, (acc_ddp, acc_one)
    assert ddp["metrics"]["validation"]["n_examples"] == 32  # the whole eval set


def _pythonpath() -> str:
    here = Path(__file__).parent
    parts = [str(here.parent / "src"), str(here), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)
