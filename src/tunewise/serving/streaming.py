"""Streamed completions: server-sent events fed by transformers' TextIteratorStreamer while the
continuous batcher (greedy or sampled) or the model worker generates (chat.completion.chunk /
text_completion objects, then `data: [DONE]`)."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator
from typing import Any

from tunewise.serving.engine import Engine, GenParams
from tunewise.serving.problems import error_body
from tunewise.serving.stop_text import StreamText


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _next(streamer: Any) -> str | bool | None:
    """The next chunk; None at the end; False when nothing came within the streamer's timeout."""
    try:
        return next(streamer)
    except StopIteration:
        return None
    except queue.Empty:
        return False


async def stream_events(
    st: Any,
    eng: Engine,
    record: dict[str, Any],
    prompt: list[int],
    params: GenParams,
    rid: str,
    kind: str,
    created: int,
    finish: Any,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    from transformers import TextIteratorStreamer

    chat = kind == "chat.completion"
    obj = "chat.completion.chunk" if chat else "text_completion"
    tokenizer = eng.predictor.tokenizer
    streamer = TextIteratorStreamer(
        tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=0.25
    )
    cancel = threading.Event()

    def chunk(text: str | None, reason: str | None, role: bool = False) -> dict[str, Any]:
        if chat:
            delta: dict[str, Any] = (
                {"role": "assistant", "content": ""}
                if role
                else ({"content": text} if text is not None else {})
            )
            choice = {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": reason, "logprobs": None}
        return {
            "id": rid,
            "object": obj,
            "created": created,
            "model": eng.model_id,
            "choices": [choice],
        }

    text = StreamText(params.stop)
    gen = st.continuous(eng, [prompt], params, stream=True)
    flow = None
    if gen is not None:  # joins the running batch at its next step
        import torch

        streamer.next_tokens_are_prompt = False  # the manager hands over generated tokens only
        flow = gen.submit(
            prompt, params.max_tokens, lambda new: streamer.put(torch.tensor(new)), params.stop
        )
    if flow is not None:
        flow.future.add_done_callback(lambda _: streamer.end())
        job = flow.future
        st.metrics.continuous.inc()
    else:
        try:
            # streams with the same settings share a batched generate, each row to its streamer
            job = st.batcher.submit(("stream", params), [(record, streamer, cancel)])
        except Exception as exc:  # shutting down
            yield _sse(error_body(503, str(exc)))
            return
    try:
        if chat:
            yield _sse(chunk(None, None, role=True))
        while True:
            piece = await asyncio.to_thread(_next, streamer)
            if piece is None:
                break
            if piece is False:
                if job.done() and job.exception() is not None:
                    raise job.exception()  # type: ignore[misc]
                continue
            out = text.feed(piece)
            if out:
                yield _sse(chunk(out, None))
            if text.stopped:
                cancel.set()  # the stop sequence came: no need to generate further
                if flow is not None:
                    gen.cancel(flow)  # type: ignore[union-attr]
                break
        generated = await asyncio.wrap_future(job)
        count = len(generated) if flow is not None else generated[0][1]
        tail = text.finish()
        if tail:
            yield _sse(chunk(tail, None))
        done = finish([text.text], [text.stopped], [count])
        final = chunk(None, done["reasons"][0])
        yield _sse(final)
        if include_usage:
            yield _sse({**final, "choices": [], "usage": done["usage"]})
        yield b"data: [DONE]\n\n"
    except Exception as exc:  # the status line is sent already: report in the stream
        yield _sse(error_body(500, f"Generation failed: {type(exc).__name__}: {exc}"))
    finally:
        cancel.set()  # also when the client went away mid-stream
        if flow is not None:
            gen.cancel(flow)  # type: ignore[union-attr]
