"""The FastAPI application of `tunewise serve`: task predictions, OpenAI-compatible completions
(openai_api.py), health, models, Prometheus metrics, feedback and hot reload.

Everything the model does runs in one worker thread (batcher.py); request handlers only check
input, queue work and format answers, so the event loop never blocks on the model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tunewise.serving import openai_api, problems
from tunewise.serving.batcher import BatcherClosed
from tunewise.serving.middleware import BearerAuth, BodyLimit, CountRequests
from tunewise.serving.problems import RequestError
from tunewise.serving.request_log import new_id
from tunewise.serving.settings import ServeSettings
from tunewise.serving.state import ServerState
from tunewise.serving.watch import RegistryWatch

OPEN_PATHS = {"/health"}
ROUTES = {"/health", "/v1/models", "/metrics", "/v1/predict", "/v1/feedback", "/admin/reload"}
ROUTES |= {"/v1/chat/completions", "/v1/completions"}


class PredictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: Any = Field(description="texts, or records with the task's input fields")


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=100)
    label: Any = None
    answer: Any = None  # an alias of label (QA and generation runs)


class ReloadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str | None = Field(None, min_length=1)


def state_of(request: Request) -> ServerState:
    return request.app.state.tw


def check_items(inputs: Any, settings: ServeSettings, field: str = "inputs") -> list[Any]:
    """A non-empty list of at most max_items texts or records whose texts are non-empty and at
    most max_input_chars long; RequestError 422 naming the field otherwise."""
    if not isinstance(inputs, list):
        raise RequestError(
            422, f"{field} must be a list of texts or records, got {type(inputs).__name__}.", field
        )
    if not inputs:
        raise RequestError(422, f"{field} is empty: give at least one input.", field)
    if len(inputs) > settings.max_items:
        raise RequestError(
            422,
            f"{field} has {len(inputs)} items; at most {settings.max_items} per request.",
            field,
        )
    for i, item in enumerate(inputs):
        where = f"{field}[{i}]"
        if isinstance(item, str):
            if not item.strip():
                raise RequestError(422, f"{where} is empty.", where)
        elif not isinstance(item, dict) or not item:
            raise RequestError(
                422,
                f"{where} must be a text or a record of the task's input fields, got "
                f"{type(item).__name__} {str(item)[:40]!r}.",
                where,
            )
        check_lengths(item, where, settings.max_input_chars)
    return inputs


def check_lengths(value: Any, where: str, limit: int) -> None:
    """Every text inside `value` is at most `limit` characters (iterative: nesting is the
    client's to choose)."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str) and len(item) > limit:
            raise RequestError(
                422, f"{at} is {len(item)} characters long; at most {limit} are accepted.", at
            )
        if isinstance(item, dict):
            stack.extend((v, f"{at}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{n}]") for n, v in enumerate(item))


async def run_job(st: ServerState, key: Any, items: list[Any]) -> list[Any]:
    """Queue work for the model; what the task refuses becomes 422, shutdown 503."""
    from tunewise.errors import TunewiseError

    try:
        return await st.batcher.asubmit(key, items)
    except BatcherClosed:
        raise RequestError(503, "The server is shutting down.") from None
    except TunewiseError as exc:
        raise RequestError(422, str(exc), "inputs") from None


def create_app(
    run_dir: str | Path, settings: ServeSettings | None = None, device: str | None = None
) -> FastAPI:
    """The server for one run directory (the model is loaded here, before anything binds)."""
    settings = (settings or ServeSettings()).resolve()
    st = ServerState(run_dir, settings, device)
    watch = (
        RegistryWatch(
            settings.watch, settings.watch_interval_s, lambda: st.engine.run_dir, st.reload
        )
        if settings.watch
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if watch:
            watch.start()
        yield
        # uvicorn has let in-flight requests finish; the worker drains whatever is still queued
        if watch:
            watch.stop()
        await asyncio.to_thread(st.close, settings.graceful_timeout_s)

    app = FastAPI(title="tunewise serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.tw = st
    problems.install(app)
    app.include_router(openai_api.router)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        eng = state_of(request).engine
        return {"status": "ok", "model": eng.model_id, "run": eng.run_dir, "task": eng.task_name}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        return {"object": "list", "data": [state_of(request).engine.info()]}

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        s = state_of(request)
        s.metrics.queue.set(s.batcher.depth)
        return Response(generate_latest(s.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/predict")
    async def predict(request: Request, body: PredictBody) -> dict[str, Any]:
        s = state_of(request)
        eng = s.engine
        items, pair = eng.check(check_items(body.inputs, s.settings))
        start = time.perf_counter()
        predictions = await run_job(s, ("predict", pair), items)
        ids = [new_id() for _ in predictions]
        if s.log is not None:
            records = [eng.as_record(x) for x in items]
            latency = (time.perf_counter() - start) * 1000
            s.log.write(
                ids, "/v1/predict", eng.run_dir, eng.task_name, records, predictions, latency
            )
        return {"predictions": predictions, "ids": ids, "model": eng.model_id}

    @app.post("/v1/feedback")
    async def feedback(request: Request, body: FeedbackBody) -> dict[str, Any]:
        s = state_of(request)
        if s.log is None:
            raise RequestError(
                409,
                "Feedback needs a request log: start the server with --log-requests DIR.",
                "id",
            )
        label = body.label if body.label is not None else body.answer
        if label is None:
            raise RequestError(
                422,
                "label: field required (the corrected label or answer; 'answer' is accepted too).",
                "label",
            )
        rid = body.id.removeprefix("chatcmpl-").removeprefix("cmpl-")
        if not s.log.knows(rid):
            raise RequestError(404, f"id: no logged request has id '{body.id}'.", "id")
        return {"status": "stored", **s.log.feedback(rid, label)}

    @app.post("/admin/reload")
    async def reload(request: Request, body: ReloadBody | None = None) -> dict[str, Any]:
        s = state_of(request)
        return await asyncio.to_thread(s.reload, body.run if body else None)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BearerAuth, key=settings.api_key, open_paths=OPEN_PATHS)
    app.add_middleware(CountRequests, metrics=st.metrics, routes=ROUTES)
    return app


def serve(
    run_dir: str | Path,
    settings: ServeSettings | None = None,
    device: str | None = None,
    log_level: str = "info",
) -> None:
    """Load the run and serve it with uvicorn until interrupted (SIGINT/SIGTERM: stop accepting,
    let in-flight requests finish, then exit)."""
    import uvicorn

    settings = (settings or ServeSettings()).resolve()
    app = create_app(run_dir, settings, device)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=int(settings.graceful_timeout_s),
    )
