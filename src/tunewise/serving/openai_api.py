"""OpenAI-compatible `POST /v1/chat/completions` and `POST /v1/completions` for generative runs,
so the official `openai` client (and anything built on it) works unchanged.

The run's task builds the prompt, as `tunewise predict` does: a chat run renders the messages with
the model's chat template; other generative runs take the last user message (or the prompt) as
their main input (instruction, document, source...). `stream: true` sends server-sent events
(`data: {chunk}` ... `data: [DONE]`) through transformers' TextIteratorStreamer. Usage counts the
prompt's tokens and the returned text's tokens.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from tunewise.serving.continuous import complete
from tunewise.serving.engine import Engine, GenParams
from tunewise.serving.problems import RequestError
from tunewise.serving.request_log import new_id
from tunewise.serving.stop_text import cut_at_stop
from tunewise.serving.streaming import stream_events

router = APIRouter()


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[dict[str, Any]] | None = None


class Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI options we do not act on are ignored
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = Field(1, ge=1, le=1)


class ChatBody(Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class CompletionBody(Sampling):
    prompt: str | list[str]


def _text(content: str | list[dict[str, Any]] | None, where: str) -> str:
    if isinstance(content, list):  # content parts: only text is understood
        if any(part.get("type") != "text" for part in content):
            raise RequestError(422, f"{where}: only text content parts are supported.", where)
        return "".join(str(part.get("text", "")) for part in content)
    return content or ""


def _params(body: Sampling, eng: Engine, max_tokens: int | None, limit: int) -> GenParams:
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > 4 or any(not s for s in stop):
        raise RequestError(422, "stop: at most 4 non-empty sequences.", "stop")
    if max_tokens is not None and max_tokens > limit:
        raise RequestError(
            422, f"max_tokens: {max_tokens} is above this server's {limit}.", "max_tokens"
        )
    return GenParams(max_tokens, body.temperature, body.top_p, tuple(stop))


def _generative(request: Request) -> Engine:
    eng: Engine = request.app.state.tw.engine
    if not eng.generative:
        raise RequestError(
            400,
            f"The served run is a '{eng.task_name}' run; completions need a generative run "
            "(instruction, chat, ...). Use POST /v1/predict.",
            "model",
        )
    return eng


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request, body: ChatBody) -> Any:
    st, eng = request.app.state.tw, _generative(request)
    limit = st.settings.max_input_chars
    messages = [
        {
            "role": "system" if m.role == "developer" else m.role,
            "content": _text(m.content, f"messages[{i}].content"),
        }
        for i, m in enumerate(body.messages)
    ]
    if len(messages) > st.settings.max_items:
        raise RequestError(422, f"messages: at most {st.settings.max_items} turns.", "messages")
    for i, m in enumerate(messages):
        if len(m["content"]) > limit:
            raise RequestError(
                422,
                f"messages[{i}].content is longer than {limit} characters.",
                f"messages[{i}].content",
            )
    if eng.task_name == "chat":
        record: dict[str, Any] = {"messages": messages}
    else:
        users = [m["content"] for m in messages if m["role"] == "user" and m["content"].strip()]
        if not users:
            raise RequestError(422, "messages: no user message with content.", "messages")
        record = eng.as_record(users[-1])
    params = _params(
        body, eng, body.max_completion_tokens or body.max_tokens, st.settings.max_tokens_limit
    )
    return await _complete(request, eng, [record], params, body, chat=True)


@router.post("/v1/completions", response_model=None)
async def completions(request: Request, body: CompletionBody) -> Any:
    st, eng = request.app.state.tw, _generative(request)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    from tunewise.serving.app import check_items

    check_items(prompts, st.settings, "prompt")
    if body.stream and len(prompts) > 1:
        raise RequestError(422, "prompt: stream one prompt at a time.", "prompt")
    params = _params(body, eng, body.max_tokens, st.settings.max_tokens_limit)
    return await _complete(
        request, eng, [eng.as_record(p) for p in prompts], params, body, chat=False
    )


async def _complete(
    request: Request,
    eng: Engine,
    records: list[dict[str, Any]],
    params: GenParams,
    body: Sampling,
    chat: bool,
) -> Any:
    from tunewise.serving.app import run_job

    st = request.app.state.tw
    prompt_ids = eng.prompts(records)  # 422 when a record is bad
    prompt_tokens = sum(len(p) for p in prompt_ids)
    longest = max(len(p) for p in prompt_ids)
    if params.max_tokens and eng.context and longest + params.max_tokens > eng.context:
        raise RequestError(
            422,
            f"max_tokens: the prompt ({longest} tokens) plus {params.max_tokens} new tokens "
            f"exceed the model's {eng.context} positions.",
            "max_tokens",
        )
    max_tokens = params.max_tokens or eng.task.options.max_new_tokens
    ids = [new_id() for _ in records]
    route = "/v1/chat/completions" if chat else "/v1/completions"
    kind = "chat.completion" if chat else "text_completion"
    rid = ("chatcmpl-" if chat else "cmpl-") + ids[0]
    created, start = int(time.time()), time.perf_counter()

    def finish(texts: list[str], stopped: list[bool], counts: list[int]) -> dict[str, Any]:
        st.metrics.tokens.inc(sum(counts))
        if st.log is not None:
            st.log.write(
                ids,
                route,
                eng.run_dir,
                eng.task_name,
                records,
                [{"generated_text": t} for t in texts],
                (time.perf_counter() - start) * 1000,
            )
        reasons = [
            "stop" if s or n < max_tokens else "length"
            for s, n in zip(stopped, counts, strict=True)
        ]
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": sum(counts),
            "total_tokens": prompt_tokens + sum(counts),
        }
        return {"reasons": reasons, "usage": usage}

    if body.stream:
        return StreamingResponse(
            stream_events(
                st,
                eng,
                records[0],
                prompt_ids[0],
                params,
                rid,
                kind,
                created,
                finish,
                bool((body.stream_options or {}).get("include_usage")),
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    gen = st.continuous(eng, prompt_ids, params, stream=False)
    raw = (
        await complete(gen, eng.predictor.tokenizer, prompt_ids, params.max_tokens, params.stop)
        if gen is not None
        else None
    )
    if raw is not None:
        st.metrics.continuous.inc(len(raw))
    else:
        raw = await run_job(st, ("generate", params), records)
    cut = [cut_at_stop(t, params.stop) for t, _ in raw]
    texts, stopped = [c[0] for c in cut], [c[1] for c in cut]
    done = finish(texts, stopped, [n for _, n in raw])
    if chat:
        choices = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": texts[0]},
                "finish_reason": done["reasons"][0],
                "logprobs": None,
            }
        ]
    else:
        choices = [
            {"index": i, "text": t, "finish_reason": r, "logprobs": None}
            for i, (t, r) in enumerate(zip(texts, done["reasons"], strict=True))
        ]
    out = {
        "id": rid,
        "object": kind,
        "created": created,
        "model": eng.model_id,
        "choices": choices,
        "usage": done["usage"],
    }
    if len(ids) > 1:
        out["ids"] = ids  # each prompt's request id, for /v1/feedback
    return out
