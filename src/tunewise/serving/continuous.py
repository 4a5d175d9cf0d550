"""Continuous batching for a causal LM's greedy completions, on transformers' own
`ContinuousBatchingManager` (paged KV cache, a background generation loop): a request joins the
running batch at the next decoding step and leaves it as soon as it is done, instead of waiting
for the whole batched `generate` before it to finish. With 8 streaming clients the first token
came after 3.0 s (p50) with batched `generate` (`benchmarks/serve_load.py`, 2026-12-01).

A manager samples or not for all its requests alike, so sampled requests (temperature, top_p)
get a second manager, built at the first of them (its KV cache costs nothing until then), whose
temperature and top_p are set per request (transformers' per-request logits processors). Beam
search keeps the micro-batched `generate` path. Greedy outputs are transformers' greedy tokens,
the same as `generate`'s (tested against the predictor's text)."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from tunewise.serving.top_p_rows import lighten_top_p

log = logging.getLogger("tunewise.serve")

PAGE_TOKENS = 64  # KV cache page: a request holds whole pages (waste < 64 tokens per request)
STEP_TOKENS = 512  # prompt tokens prefilled per step at most: a long prompt delays others little


@dataclass
class Flow:
    """One request in the manager: its generated tokens so far, its end, its consumer."""

    rid: str
    prompt: list[int]
    on_tokens: Callable[[list[int]], None] | None  # new tokens, called on the event loop
    eos: set[int]
    stop: tuple[str, ...] = ()
    tokens: list[int] = field(default_factory=list)
    future: Future = field(default_factory=Future)  # (tokens without end-of-sequence)

    def finish(self, error: str | None = None) -> None:
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(RuntimeError(error))
            return
        out = list(self.tokens)
        while out and out[-1] in self.eos:
            out.pop()
        self.future.set_result(out)


class ContinuousGenerator:
    """The manager for one served model. `submit` from the event loop's thread (outputs come back
    to it through the manager's result handlers); `retire` lets in-flight requests finish, then
    stops the generation thread."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        options: Any,
        capacity_tokens: int,
        rows: int,
        sampling: bool = False,
    ):
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        from tunewise.tasks.generation.inference import generation_kwargs

        self._parts = (model, tokenizer, options, capacity_tokens, rows)
        kwargs = generation_kwargs(options, tokenizer, model)
        eos = kwargs.get("eos_token_id") or []
        self.eos, self.tokenizer = set(eos), tokenizer
        self.capacity = capacity_tokens
        self.max_new_tokens = options.max_new_tokens
        sample: dict[str, Any] = {"do_sample": False}
        if sampling:  # placeholders that make transformers build both processors; every request
            # then sets its own temperature and top_p (`route`), so these values are never used
            sample = {"do_sample": True, "temperature": 0.5, "top_p": 0.5}
        config = GenerationConfig(
            max_new_tokens=options.max_new_tokens,
            eos_token_id=list(eos) or -1,
            pad_token_id=kwargs.get("pad_token_id"),
            **sample,
        )
        cb = ContinuousBatchingConfig(
            page_size=PAGE_TOKENS,
            num_blocks=math.ceil(capacity_tokens / PAGE_TOKENS),
            max_batch_tokens=STEP_TOKENS,
            max_requests_per_batch=rows,
            per_request_processors=sampling,
        )
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.manager = base.init_continuous_batching(
            generation_config=config, continuous_batching_config=cb
        )
        if sampling:
            lighten_top_p(self.manager)
        self._lock = threading.Lock()
        self._flows: dict[str, Flow] = {}
        self._retired = False
        self._started = False
        self._count = 0
        self._sampler: ContinuousGenerator | None = None  # sampled requests' manager, when asked

    def _start(self) -> None:
        """Start the generation loop at the first request (an app built but never served starts
        no thread). Started from a daemon thread, the loop's thread is a daemon too (a thread
        inherits its creator's flag): a server that never reached its shutdown cannot keep the
        interpreter from exiting. The server still stops it in order (`close`)."""
        starter = threading.Thread(target=self.manager.start, daemon=True, name="tw-cb-start")
        starter.start()
        starter.join()
        self._started = True

    def fits(self, prompt_tokens: int, max_new_tokens: int | None) -> bool:
        """Whether the KV cache can ever hold the request (else it would wait forever)."""
        return prompt_tokens + (max_new_tokens or self.max_new_tokens) <= self.capacity

    @property
    def active(self) -> int:
        return len(self._flows)

    def submit(
        self,
        prompt: list[int],
        max_new_tokens: int | None,
        on_tokens: Callable[[list[int]], None] | None = None,
        stop: tuple[str, ...] = (),
        sampling: dict[str, float] | None = None,
    ) -> Flow | None:
        """Queue a prompt; None once retired (the caller asks the engine served now). Call from
        the event loop's thread: the manager hands outputs to that loop. Generation ends at the
        first token after which the (stripped) text holds a stop sequence, as `generate`'s
        StopStringCriteria ends it."""
        with self._lock:
            if self._retired:
                return None
            if not self._started:
                self._start()
            self._count += 1
            flow = Flow(f"tw-{self._count}", list(prompt), on_tokens, self.eos, stop)
            self._flows[flow.rid] = flow
        self.manager.register_result_handler(flow.rid, self._deliver)
        rid = self.manager.add_request(
            flow.prompt,
            request_id=flow.rid,
            max_new_tokens=max_new_tokens or self.max_new_tokens,
            streaming=on_tokens is not None or bool(stop),
            eos_token_id=sorted(self.eos) or None,
            **(sampling or {}),
        )
        if rid is None:  # the manager refused it (stopping)
            self._drop(flow, "the generation loop is stopping")
        return flow

    def cancel(self, flow: Flow) -> None:
        """Stop generating for `flow` (its client left, or a stop sequence came); its future gets
        the tokens so far."""
        if flow.future.done():
            return
        self.manager.cancel_request(flow.rid)
        router = getattr(self.manager, "output_router", None)
        if router is not None:  # a cancelled request sends no final output to clean it up
            with router._lock:
                router.result_handlers.pop(flow.rid, None)
        self._drop(flow)

    def greedy(self, options: Any, temperature: float | None, top_p: float | None) -> bool:
        """Whether a request decodes greedily (what this manager does) under the run's options."""
        if temperature == 0:
            return True
        return not options.do_sample and temperature is None and top_p is None

    def route(self, options: Any, params: Any) -> Lane | None:
        """Where a request (`GenParams`) goes: this (greedy) manager, or the sampling one with
        the request's temperature and top_p, as the engine's `generate` path would take them.
        None once retired."""
        if self.greedy(options, params.temperature, params.top_p):
            return Lane(self, None)
        with self._lock:
            if self._retired:
                return None
            if self._sampler is None:
                self._sampler = ContinuousGenerator(*self._parts, sampling=True)
        return Lane(self._sampler, params.sampled(options))

    def _deliver(self, output: Any) -> None:  # on the event loop, from the manager's thread
        flow = self._flows.get(output.request_id)
        if flow is None:
            return
        if output.error is not None:
            self._drop(flow, output.error)
            return
        new = list(output.generated_tokens[len(flow.tokens) :])
        flow.tokens.extend(new)
        if new and flow.on_tokens is not None:
            flow.on_tokens(new)
        if new and flow.stop and self._stopped(flow):
            self.cancel(flow)
        elif output.is_finished():
            self._drop(flow)

    def _stopped(self, flow: Flow) -> bool:
        from tunewise.serving.stop_text import cut_at_stop

        text = self.tokenizer.decode(flow.tokens, skip_special_tokens=True)
        return cut_at_stop(text.strip(), flow.stop)[1]

    def _drop(self, flow: Flow, error: str | None = None) -> None:
        with self._lock:
            self._flows.pop(flow.rid, None)
            retire = self._retired and not self._flows
        flow.finish(error)
        if retire:
            self._stop()

    def retire(self) -> None:
        """Take no new requests; stop the generation thread once the running ones are done."""
        with self._lock:
            self._retired = True
            idle = not self._flows
        if self._sampler is not None:
            self._sampler.retire()
        if idle:
            self._stop()

    def _stop(self) -> None:
        if not self._started:
            return
        # FLUSH_AND_STOP: whatever the manager still holds is finished first
        threading.Thread(target=self.manager.stop, kwargs={"block": True}, daemon=True).start()

    def close(self, timeout: float | None = None) -> None:
        """Shutdown: finish what runs (up to `timeout`), then stop."""
        with self._lock:
            self._retired = True
        if self._sampler is not None:
            self._sampler.close(timeout)
        if self._started:
            self.manager.stop(block=True, timeout=timeout)
        for flow in list(self._flows.values()):
            self._drop(flow, "the server shut down before the answer was complete")


@dataclass
class Lane:
    """A manager and the per-request sampling settings its requests carry (None: greedy)."""

    gen: ContinuousGenerator
    sampling: dict[str, float] | None

    def submit(
        self,
        prompt: list[int],
        max_new_tokens: int | None,
        on_tokens: Callable[[list[int]], None] | None = None,
        stop: tuple[str, ...] = (),
    ) -> Flow | None:
        return self.gen.submit(prompt, max_new_tokens, on_tokens, stop, self.sampling)

    def cancel(self, flow: Flow) -> None:
        self.gen.cancel(flow)


async def complete(
    gen: ContinuousGenerator | Lane,
    tokenizer: Any,
    prompts: list[list[int]],
    max_new_tokens: int | None,
    stop: tuple[str, ...],
) -> list[tuple[str, int]] | None:
    """Each prompt's generated text (stripped, as `tunewise predict` returns it) and its token
    count; a request stops at its first stop sequence, as `generate`'s StopStringCriteria stops
    it. None when `gen` was retired meanwhile (a reload): the caller takes the batched path."""
    flows: list[Flow] = []
    for prompt in prompts:
        flow = gen.submit(prompt, max_new_tokens, stop=stop)
        if flow is None:
            for f in flows:
                gen.cancel(f)
            return None
        flows.append(flow)
    try:
        done = await asyncio.gather(*(asyncio.wrap_future(f.future) for f in flows))
    finally:  # the client went away: stop generating for it
        for f in flows:
            gen.cancel(f)
    return [(tokenizer.decode(t, skip_special_tokens=True).strip(), len(t)) for t in done]


def continuous_for(engine: Any, capacity_tokens: int, rows: int) -> ContinuousGenerator | None:
    """A continuous batcher for `engine`'s model where it can have one: causal LMs (not seq2seq),
    a KV cache budget over 0. None otherwise, or where transformers cannot run this model so
    (logged; requests then take the batched `generate` path)."""
    if capacity_tokens <= 0 or not engine.generative or engine.task.seq2seq:
        return None
    try:
        return ContinuousGenerator(
            engine.predictor.model,
            engine.predictor.tokenizer,
            engine.task.options,
            capacity_tokens,
            rows,
        )
    except Exception as exc:  # a model transformers' manager does not support
        log.warning("continuous batching off (%s: %s)", type(exc).__name__, exc)
        return None
