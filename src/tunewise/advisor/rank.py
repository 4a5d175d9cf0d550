"""Rank fine-tuning strategies for a scenario: task, training-set size, base model, device,
memory and time budget.

Each strategy starts from the quality prior its class declares (`Strategy.advisor`: points of
the task metric below full fine-tuning, measured on SST-2 here) and the rules below move it; each
rule that fires adds a reason. Rules read the strategy's declared facts (family, short-run prior,
virtual tokens), never its name, so a newly registered strategy is scored like the others; one
without calibration is scored at generic defaults and the reasons say so. The rules and their
sources (papers and our sweeps) are written out in docs/strategies.md; change them together.
Strategies that do not fit the memory or time budget sink to the bottom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunewise.advisor import calibration as cal
from tunewise.advisor import estimate

SMALL_DATA = 1_000  # examples
BIG_DATA = 20_000
# Lester et al. 2021 (T5 on SuperGLUE): prompt tuning trails model tuning by a wide margin at
# ~100M parameters, by a few points at 770M, by about one at 3B, and matches it at 11B. The
# advisor closes a prompt method's measured gap linearly in log(parameters) between these two.
PROMPT_GAP_OPEN = 100_000_000  # parameters: below this, the gap measured on minilm stands
PROMPT_GAP_CLOSED = 10_000_000_000  # and at this size it is gone
LARGE_MODEL = 300_000_000  # BERT-large scale, where few-sample instability was reported
SHORT_RUN_STEPS = 60  # optimizer steps below which zero-initialised updates lag


@dataclass
class Scenario:
    task: str
    train_size: int
    model: str
    memory_gb: float | None = None
    time_budget_s: float | None = None  # for one epoch
    device: str = "cpu"
    avg_tokens: float | None = None  # real tokens per example; None: 64 (or from `data`)
    max_length: int = 128
    epochs: float = 1.0
    batch_size: int = 32


def rules(name: str, sc: Scenario, task_cls: type, size: estimate.Sizes) -> list[tuple[float, str]]:
    """(score change, reason) for each rule that applies to strategy `name`. Each rule names
    its source; docs/strategies.md lists them with the sweep results that checked them."""
    out: list[tuple[float, str]] = []
    small, big = sc.train_size < SMALL_DATA, sc.train_size >= BIG_DATA
    large_model = size.total >= LARGE_MODEL
    steps = math.ceil(sc.train_size * sc.epochs / sc.batch_size)
    token_level = getattr(task_cls, "token_level", False)
    millions = f"{size.total / 1e6:,.0f}M"
    facts = estimate.facts(name)
    family = facts.family
    prior = cal.DEFAULT_PRIOR if facts.prior is None else facts.prior  # as recommend() scores
    # the short-run prior where it replaces the prior (None for a long run or without one)
    short = facts.short_prior
    if steps >= SHORT_RUN_STEPS or family == "full" or token_level:
        short = None
    gap = prior if short is None else short  # points against full in force

    def add(delta: float, why: str) -> None:
        out.append((delta, why))

    if family == "full":
        if big and not large_model:
            add(+1.0, "plenty of data for a small model: full fine-tuning won our SST-2 sweeps")
        if small and large_model:
            add(
                -3.0,
                f"{sc.train_size} examples for {millions} weights: full fine-tuning of "
                "large models is unstable with little data (Mosbach et al. 2021)",
            )
    if family == "reparam" and small and large_model:
        add(
            +2.0,
            "few examples on a large model: a small update to every layer matches "
            "full fine-tuning without overfitting (Hu et al. 2021; He et al. 2021)",
        )
    if family == "prompt":
        closed = prompt_gap_closed(size.total)
        if closed > 0 and gap < 0:
            add(
                -gap * closed,
                f"at {millions} parameters prompt methods close ~{closed:.0%} of their gap to "
                "full fine-tuning; it is gone near 10B (Lester et al. 2021)",
            )
        else:
            add(
                0.0,
                f"at {millions} parameters virtual tokens lag full fine-tuning "
                "(Lester et al. 2021; Liu et al. 2022)",
            )
        if token_level:
            add(
                -4.0,
                "token-level task: prompts alone are weak for sequence labelling "
                "(Liu et al. 2022, P-tuning v2)",
            )
    if family == "frozen" and token_level:
        add(
            -6.0,
            "token-level task is far from sentence-level pre-training: frozen token "
            "features do poorly",
        )
    if short is not None:
        add(
            short - prior,
            f"only ~{steps} optimizer steps: after 15 steps on 1,000 SST-2 examples (3 seeds) "
            f"{name} ended {abs(short):.1f} points "
            f"{'below' if short < 0 else 'above'} full fine-tuning",
        )
    if getattr(task_cls, "generative", False) and facts.preferred_for_generation:
        add(
            +1.0,
            "generative task on a pretrained LM: LoRA is the standard choice "
            "(Hu et al. 2021; Dettmers et al. 2023)",
        )
    return out


def prompt_gap_closed(parameters: int) -> float:
    """The share of a prompt method's gap to full fine-tuning that model scale closes: 0 up to
    PROMPT_GAP_OPEN parameters, 1 from PROMPT_GAP_CLOSED, linear in log(parameters) between."""
    if parameters <= PROMPT_GAP_OPEN:
        return 0.0
    span = math.log(PROMPT_GAP_CLOSED / PROMPT_GAP_OPEN)
    return min(1.0, math.log(parameters / PROMPT_GAP_OPEN) / span)


def uncalibrated_reasons(name: str, facts: Any) -> list[str]:
    """What the advisor had to assume because the strategy class did not measure it."""
    out = []
    if facts.prior is None:
        out.append(
            f"{name} is not calibrated: its class declares no quality prior (Strategy.advisor), "
            f"so it is scored at the default {cal.DEFAULT_PRIOR:g} points below full fine-tuning; "
            "measure it with benchmarks/sweep_sst2.py"
        )
    cost = [n for n in ("activation_factor", "mfu") if getattr(facts, n) is None]
    if cost:
        out.append(
            f"{name}'s {' and '.join(cost)} not measured: memory and time use generic defaults"
        )
    return out


def task_class(task: str) -> type:
    from tunewise.registry import TASKS

    return TASKS.get(task)


def recommend(sc: Scenario, candidates: list[str] | None = None) -> list[dict[str, Any]]:
    """Strategies ranked best first; each with the estimates, a score and its reasons."""
    from tunewise.registry import STRATEGIES
    from tunewise.strategies.compat import compatible_strategies

    task_cls = task_class(sc.task)
    names = [n for n in compatible_strategies(task_cls) if not candidates or n in candidates]
    avg = sc.avg_tokens or 64.0
    tokens_per_batch = sc.batch_size * min(avg * 1.15, sc.max_length)  # padding inside a batch
    rows = []
    for name in names:
        try:
            size = estimate.sizes(
                sc.model, name, str(task_cls.auto_model), tuple(task_cls.head_modules)
            )
        except Exception as exc:  # e.g. bitfit on a model without biases, qlora without CUDA
            rows.append(
                {
                    "strategy": name,
                    "fits": False,
                    "score": float("-inf"),
                    "reasons": [f"not possible: {str(exc).splitlines()[0]}"],
                    "trainable_params": None,
                    "est_peak_memory_gb": None,
                    "est_epoch_seconds": None,
                }
            )
            continue
        facts = estimate.facts(name)
        per_example = avg + STRATEGIES.get(name).virtual_tokens_for(task_cls)
        seconds = estimate.epoch_seconds(name, size, sc.train_size * per_example, sc.device)
        # prepended virtual tokens lengthen the inputs, prefixes only the attention keys
        batch_tokens = tokens_per_batch * (per_example / avg if facts.prepends_tokens else 1.0)
        memory = estimate.peak_memory_gb(name, size, batch_tokens)
        score, reasons = cal.DEFAULT_PRIOR if facts.prior is None else facts.prior, []
        for delta, why in rules(name, sc, task_cls, size):
            score += delta
            reasons.append(why)
        fits = True
        if sc.memory_gb is not None and memory > sc.memory_gb:
            fits = False
            reasons.insert(0, f"needs ~{memory:.1f} GB, over the {sc.memory_gb:g} GB budget")
        if sc.time_budget_s is not None and seconds > sc.time_budget_s:
            fits = False
            reasons.insert(0, f"~{seconds:.0f} s per epoch, over the {sc.time_budget_s:g} s budget")
        reasons.extend(uncalibrated_reasons(name, facts))
        pct = 100 * size.trainable / max(size.total, 1)
        reasons.append(
            f"trains {size.trainable:,} parameters ({pct:.2f}%); "
            f"~{memory:.1f} GB peak, ~{seconds:.0f} s per epoch on {sc.device}"
        )
        rows.append(
            {
                "strategy": name,
                "fits": fits,
                "score": round(score, 2),
                "trainable_params": size.trainable,
                "trainable_percent": round(pct, 4),
                "est_peak_memory_gb": round(memory, 2),
                "est_epoch_seconds": round(seconds, 1),
                "reasons": reasons,
            }
        )
    # fitting first, then quality, then the cheaper one
    rows.sort(key=lambda r: (not r["fits"], -r["score"], r["est_epoch_seconds"] or 0))
    return rows


def average_tokens(path: str | Path, model: str, limit: int = 2000) -> tuple[int, float]:
    """(records, mean tokens per record) of a data file, tokenized with the model's tokenizer
    (all text fields of the first `limit` records)."""
    from tunewise.data.readers import read_records
    from tunewise.models import load_tokenizer, resolve

    tokenizer = load_tokenizer(resolve(model))
    n, texts = 0, []
    for _, record in read_records(Path(path)):
        n += 1
        if len(texts) < limit:
            texts.append(" ".join(str(v) for v in record.values() if isinstance(v, str)))
    if not texts:
        return 0, 0.0
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    return n, sum(lengths) / len(lengths)
