"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`: the real `tunewise
train CONFIG` command, instrumented to record what this rank trained on and its final weights.

usage: ddp_worker.py CONFIG DUMP_DIR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from tunewise.cli import app
from tunewise.training.trainer import TunewiseTrainer

config, dump = sys.argv[1], Path(sys.argv[2])
rank = int(os.environ["RANK"])
seen: list[list] = []
compute_loss, train = TunewiseTrainer.compute_loss, TunewiseTrainer.train


def recording_loss(self, model, inputs, *args, **kwargs):
    if model.training:
        epoch = int(self.state.epoch or 0)
        for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"], strict=True):
            seen.append([epoch, ids[mask.bool()].tolist()])
    return compute_loss(self, model, inputs, *args, **kwargs)


def dumping_train(self, *args, **kwargs):
    output = train(self, *args, **kwargs)
    params = {n: p.detach().cpu() for n, p in self.model.named_parameters() if p.requires_grad}
    torch.save(params, dump / f"rank{rank}.pt")
    (dump / f"rank{rank}.json").write_text(json.dumps(seen))
    return output


TunewiseTrainer.compute_loss = recording_loss
TunewiseTrainer.train = dumping_train
app(["train", config], standalone_mode=False)
