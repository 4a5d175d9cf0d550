"""Scores for generated text: ROUGE (rouge-score), BLEU and chrF (sacrebleu), perplexity.

All on a 0-100 scale, like sacrebleu and SQuAD, so tables read the same way. ROUGE is the mean
F-measure over examples with Porter stemming (as the ROUGE-1.5.5 reference and `rouge-score`'s
own examples use); BLEU and chrF are corpus-level, sacrebleu's defaults (13a tokenisation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _check(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if any(isinstance(r, str) for r in references):
        raise TypeError("references[i] must be a list of reference strings, not a string")


def rouge_scores(
    predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure (0-100); with several references the best one counts."""
    from rouge_score import rouge_scorer

    _check(predictions, references)
    keys = ("rouge1", "rouge2", "rougeL")
    if not predictions:
        return dict.fromkeys(keys, 0.0)
    scorer = rouge_scorer.RougeScorer(list(keys), use_stemmer=True)
    totals = dict.fromkeys(keys, 0.0)
    for pred, refs in zip(predictions, references, strict=True):
        scores = scorer.score_multi(list(refs), pred)
        for k in keys:
            totals[k] += scores[k].fmeasure
    return {k: 100.0 * v / len(predictions) for k, v in totals.items()}


def bleu_chrf(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU and chrF (0-100) with sacrebleu; examples may have different numbers of
    references (missing ones are padded with None, as sacrebleu allows)."""
    import sacrebleu

    _check(predictions, references)
    if not predictions:
        return {"bleu": 0.0, "chrf": 0.0}
    n_refs = max(len(r) for r in references)
    # sacrebleu wants one stream per reference position: streams[j][i] = j-th reference of i.
    streams = [[r[j] if j < len(r) else None for r in references] for j in range(n_refs)]
    bleu = sacrebleu.corpus_bleu(list(predictions), streams)
    chrf = sacrebleu.corpus_chrf(list(predictions), streams)
    return {"bleu": float(bleu.score), "chrf": float(chrf.score)}


def perplexity(nll_sum: float, n_tokens: int) -> dict[str, float]:
    """Token-weighted mean negative log-likelihood (nats) and its exponential."""
    if n_tokens <= 0:
        return {"loss": float("nan"), "perplexity": float("nan"), "n_tokens": 0}
    loss = nll_sum / n_tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "n_tokens": int(n_tokens)}
