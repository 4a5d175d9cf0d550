"""The continuous batcher on a tiny random LLaMA: the same greedy tokens as `generate`, a request
joins a running batch and leaves before a longer one ends, cancel, retire, which requests it
takes, and sampled requests on their own manager with their own temperature and top_p."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from generation_fixtures import build_llama
from tunewise.serving.continuous import ContinuousGenerator, complete
from tunewise.serving.engine import GenParams
from tunewise.tasks.generation.base import GenerationOptions


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_llama(tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module")
def parts(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    return model, AutoTokenizer.from_pretrained(model_dir)


def generator(parts, **options) -> ContinuousGenerator:
    model, tok = parts
    opts = GenerationOptions(max_new_tokens=options.pop("max_new_tokens", 8), **options)
    return ContinuousGenerator(model, tok, opts, capacity_tokens=1024, rows=8)


PROMPTS = [[5, 9, 14, 3], [7, 7, 21], [30, 31, 32, 33, 34, 35]]


def test_greedy_tokens_equal_generates(parts):
    import torch

    model, tok = parts
    gen = generator(parts, max_new_tokens=8)
    try:
        out = asyncio.run(complete(gen, tok, PROMPTS, None, ()))
    finally:
        gen.close(10)
    for prompt, (text, count) in zip(PROMPTS, out, strict=True):
        with torch.inference_mode():
            ref = model.generate(
                torch.tensor([prompt]),
                max_new_tokens=8,
                do_sample=False,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
            )[0, len(prompt) :].tolist()
        ref = [t for t in ref if t not in (tok.eos_token_id, tok.pad_token_id)]
        assert count == len(ref) > 0
        assert text == tok.decode(ref, skip_special_tokens=True).strip()


def test_a_request_joins_the_running_batch_and_leaves_first(parts):
    gen = generator(parts, max_new_tokens=40)
    events: list[tuple[str, int]] = []

    async def main() -> tuple[list[int], list[int]]:
        long = gen.submit(PROMPTS[0], 40, lambda new: events.append(("long", len(new))))
        while sum(n for who, n in events if who == "long") < 3:  # the long one is running
            await asyncio.sleep(0.001)
        short = gen.submit(PROMPTS[1], 2, lambda new: events.append(("short", len(new))))
        short_tokens = await asyncio.wrap_future(short.future)
        long_so_far = len(long.tokens)
        long_tokens = await asyncio.wrap_future(long.future)
        assert long_so_far < len(long_tokens)  # the long one was still generating
        return short_tokens, long_tokens

    try:
        short_tokens, long_tokens = asyncio.run(main())
    finally:
        gen.close(10)
    assert len(long_tokens) == 40 and len(short_tokens) == 2  # no end-of-sequence came
    first_short = next(i for i, (who, _) in enumerate(events) if who == "short")
    last_long = max(i for i, (who, _) in enumerate(events) if who == "long")
    assert first_short < last_long  # interleaved: it did not wait for the long one


def test_cancel_returns_the_tokens_so_far_and_retire_waits_for_running_requests(parts):
    gen = generator(parts, max_new_tokens=40)

    async def main() -> list[int]:
        flow = gen.submit(PROMPTS[2], 40, lambda new: None)
        while len(flow.tokens) < 2:
            await asyncio.sleep(0.001)
        other = gen.submit(PROMPTS[0], 5)
        gen.retire()
        assert gen.submit(PROMPTS[1], 5) is None  # retired: the caller goes elsewhere
        gen.cancel(flow)
        assert len(await asyncio.wrap_future(other.future)) == 5  # still answered
        return await asyncio.wrap_future(flow.future)

    got = asyncio.run(main())
    assert 2 <= len(got) < 40
    gen.manager._generation_thread and gen.manager._generation_thread.join(10)
    assert not gen.manager.is_running()  # stopped once the last running request was done


def test_the_loop_starts_at_the_first_request_as_a_daemon_thread(parts):
    """An app built but never served starts no thread; a loop that was never stopped cannot
    keep the interpreter from exiting (the suite once passed, then hung at exit)."""
    import threading

    gen = generator(parts, max_new_tokens=2)
    assert not gen.manager.is_running()
    gen.close(5)  # never started: nothing to stop, no warning, no thread
    assert not gen.manager.is_running()

    gen = generator(parts, max_new_tokens=2)
    before = set(threading.enumerate())
    try:
        assert len(asyncio.run(complete(gen, parts[1], PROMPTS[:1], None, ()))) == 1
        loop = gen.manager._generation_thread
        assert loop is not None and loop.daemon and loop not in before
    finally:
        gen.close(10)
    assert not gen.manager.is_running()


def test_stop_sequences_end_generation_at_the_token_that_completes_them(parts):
    _, tok = parts
    gen = generator(parts, max_new_tokens=12)
    try:
        ((full, n_full),) = asyncio.run(complete(gen, tok, [PROMPTS[0]], None, ()))
        assert n_full == 12 and len(full) > 4
        stop = full[2:4]
        ((cut, n_cut),) = asyncio.run(complete(gen, tok, [PROMPTS[0]], None, (stop,)))
    finally:
        gen.close(10)
    assert stop in cut and n_cut < n_full  # generation ended early (the caller cuts the text)


@pytest.mark.parametrize(
    ("options", "temperature", "top_p", "greedy"),
    [
        ({}, None, None, True),
        ({}, 0, 0.5, True),
        ({}, 0.7, None, False),
        ({}, None, 0.9, False),
        ({"do_sample": True}, None, None, False),
        ({"do_sample": True}, 0, None, True),
    ],
)
def test_only_greedy_requests_are_taken(options, temperature, top_p, greedy):
    opts = GenerationOptions(**options)
    gen = SimpleNamespace()
    assert ContinuousGenerator.greedy(gen, opts, temperature, top_p) is greedy


def test_sampled_requests_get_their_own_manager_with_their_own_settings(parts):
    """Each sampled request's temperature and top_p reach the sampler: a near-zero temperature
    or a near-zero top_p leaves one token to draw (the greedy one); 1.0 and 1.0 draw others."""
    import torch

    _, tok = parts
    opts = GenerationOptions(max_new_tokens=8)
    gen = generator(parts, max_new_tokens=8)
    try:
        assert gen.route(opts, GenParams()).sampling is None  # greedy: this manager
        assert gen._sampler is None  # no second KV cache until a sampled request comes
        greedy = asyncio.run(complete(gen, tok, PROMPTS, None, ()))
        cold = gen.route(opts, GenParams(temperature=1e-4))
        assert cold.gen is gen._sampler and cold.sampling == {"temperature": 1e-4, "top_p": 1.0}
        assert asyncio.run(complete(cold, tok, PROMPTS, None, ())) == greedy
        narrow = gen.route(opts, GenParams(top_p=1e-6))
        assert narrow.sampling == {"temperature": 1.0, "top_p": 1e-6}
        assert asyncio.run(complete(narrow, tok, PROMPTS, None, ())) == greedy
        torch.manual_seed(0)
        free = asyncio.run(
            complete(gen.route(opts, GenParams(temperature=1.0, top_p=1.0)), tok, PROMPTS, None, ())
        )
        assert free != greedy  # 24 tokens drawn from a random model's flat distributions
        sampler = gen._sampler
    finally:
        gen.close(10)
    assert not sampler.manager.is_running() and not gen.manager.is_running()
    assert gen.route(opts, GenParams(temperature=0.7)) is None  # closed: the batched path answers


def test_top_p_sorts_only_the_rows_that_filter_with_the_same_distributions():
    import torch
    from transformers.generation.continuous_batching.cb_logits_processors import (
        ContinuousBatchingTopPLogitsWarper,
    )
    from transformers.generation.logits_process import TopPLogitsWarper

    from tunewise.serving.top_p_rows import rowwise_class

    torch.manual_seed(0)
    scores = torch.randn(4, 300) * 3
    scores[1, :5] = -200.0  # logits far enough below the others to underflow to probability 0
    top_p = torch.tensor([1.0, 1.0, 0.3, 0.9]).view(dtype=torch.int32)
    plain = ContinuousBatchingTopPLogitsWarper(TopPLogitsWarper(0.5))
    light = ContinuousBatchingTopPLogitsWarper(TopPLogitsWarper(0.5))
    light.__class__ = rowwise_class()
    want, got = plain(scores.clone(), top_p), light(scores.clone(), top_p)
    assert torch.equal(got[2:], want[2:])  # the filtering rows: the same scores
    assert torch.equal(got[:2], scores[:2])  # top_p 1.0: untouched, not sorted
    assert torch.equal(torch.softmax(got, -1), torch.softmax(want, -1))
    assert torch.equal(light(scores[:2], top_p[:2]), scores[:2])  # no row filters: as given


def test_a_narrow_and_a_free_sampled_request_share_a_batch(parts):
    _, tok = parts
    opts = GenerationOptions(max_new_tokens=8)
    gen = generator(parts, max_new_tokens=8)
    try:
        greedy = asyncio.run(complete(gen, tok, PROMPTS[:1], None, ()))
        narrow, free = (
            gen.route(opts, GenParams(top_p=1e-6)),
            gen.route(opts, GenParams(temperature=1.0, top_p=1.0)),
        )
        names = [type(p).__name__ for p in narrow.gen.manager.logit_processor.logits_processor]
        assert "RowwiseTopP" in names  # the sampler's top-p runs row-wise

        async def both() -> list:
            return await asyncio.gather(
                complete(narrow, tok, PROMPTS[:1], None, ()),
                complete(free, tok, PROMPTS[1:3], None, ()),
            )

        got_narrow, got_free = asyncio.run(both())
    finally:
        gen.close(10)
    assert got_narrow == greedy and len(got_free) == 2
