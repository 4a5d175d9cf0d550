"""Generated text as it is produced: transformers' TextIteratorStreamer, fed by the task's own
`generate` running in a thread (the way transformers documents streaming to a UI)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any


def stream_text(
    predictor: Any, text: str | dict[str, Any], timeout: float = 300.0
) -> Iterator[str]:
    """Yield the text generated so far for one input, growing as tokens arrive. Errors raised
    by generation are re-raised here once the stream stops."""
    from transformers import TextIteratorStreamer

    dataset = predictor.task.records_to_dataset([text])
    streamer = TextIteratorStreamer(
        predictor.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=timeout
    )
    failure: list[BaseException] = []

    def generate() -> None:
        try:
            predictor.task.generate(
                predictor.model, predictor.tokenizer, dataset, 1, streamer=streamer
            )
        except BaseException as exc:  # handed to the reading side below
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=generate, daemon=True)
    worker.start()
    so_far = ""
    for piece in streamer:
        so_far += piece
        yield so_far
    worker.join()
    if failure:
        raise failure[0]
