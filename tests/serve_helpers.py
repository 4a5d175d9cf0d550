"""Tiny runs to serve and a real uvicorn server on a free loopback port, for the serve tests."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from conftest import sentiment_records, toy_config, write_jsonl
from generation_fixtures import build_llama, chat_records, write


def classification_run(root: Path, model_dir: Path, name: str = "run", seed: int = 0) -> Path:
    from tunewise import api

    data = {
        "train": write_jsonl(root / f"{name}-train.jsonl", sentiment_records(16, seed=1)),
        "validation": write_jsonl(root / f"{name}-dev.jsonl", sentiment_records(4, seed=2)),
    }
    one_step = {"training": {"epochs": 1, "max_steps": 1}, "eval": {"each_epoch": False}}
    cfg = toy_config(model_dir, data, root / name, seed=seed, **one_step)
    return Path(api.finetune(cfg).run_dir)


def chat_run(root: Path) -> Path:
    """A chat run on a random LLaMA that emits varied text (two training steps)."""
    from tunewise import api

    model = build_llama(root / "noisy-llama", init_std=0.5)
    data = {
        "train": write(root / "chat-train.jsonl", chat_records(16, 1)),
        "validation": write(root / "chat-dev.jsonl", chat_records(4, 2)),
    }
    cfg = {
        "model": {"name": str(model), "max_length": 64},
        "task": {"type": "chat", "max_new_tokens": 12},
        "data": {"train": str(data["train"]), "validation": str(data["validation"])},
        "strategy": {"name": "lora"},
        "training": {"epochs": 1, "batch_size": 8, "max_steps": 2, "learning_rate": 1e-2},
        "eval": {"each_epoch": False},
        "output_dir": str(root / "chat-run"),
        "seed": 0,
    }
    return Path(api.finetune(cfg).run_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving `app` in a background thread; `stop()` shuts it down gracefully."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.app = app
        port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=10
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in /metrics output (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
