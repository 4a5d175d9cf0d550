"""Token classification (NER): BIO tags per word, entity-level metrics, entity spans on raw text.

Data: CoNLL column files (`data.format: conll`, or any non-JSON file with format auto) or
JSONL/JSON records with `tokens` and `tags`. The label set (B-/I- for every entity type seen in
training, plus O) is learned from the training split and saved with the run.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import SplitFile, TaskOptions
from tunewise.errors import ConfigError, DataError
from tunewise.evaluation.ner import entity_metrics
from tunewise.inference.batches import IGNORE, RightPadCollator
from tunewise.tasks.base import Task
from tunewise.tasks.token_classification.align import (
    align_labels,
    entity_spans,
    input_columns,
    join_words,
)
from tunewise.tasks.token_classification.conll import (
    TagScheme,
    read_conll,
    read_tagged_records,
    split_tag,
    to_bio,
)
from tunewise.tasks.token_classification.encode import encode_words
from tunewise.tasks.token_classification.head import HEAD_MODULES, TokenClassifier
from tunewise.tasks.token_classification.schema import SCHEMA

JSON_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


class TokenClassificationOptions(TaskOptions):
    model_config = ConfigDict(extra="forbid")
    type: Literal["token_classification"] = "token_classification"
    tag_column: int = -1  # CoNLL: column of the tag (0-based; negative counts from the end)
    token_column: int = 0  # CoNLL: column of the word
    tag_scheme: TagScheme = "auto"  # auto: IOB1 files are detected and converted to BIO
    tokens_field: str = "tokens"  # JSON/JSONL field holding the list of words
    # ... and the tags (the first of these names present)
    tags_field: str | list[str] = Field(default_factory=lambda: ["tags", "ner_tags"])


class TokenClassificationTask(Task):
    name = "token_classification"
    predict_fields = ("text",)
    in_memory_inputs = True
    prepare_schema = SCHEMA
    summary_keys = ("f1", "precision", "recall")
    Options = TokenClassificationOptions
    default_metric = "f1"
    head_modules = HEAD_MODULES
    token_level = True
    # Every word is a label, and small NER sets need updates more than big batches: minilm on
    # 1,000 CoNLL sentences, 3 epochs, the same lr: F1 0.797 at 16 against 0.738 at 32.
    default_batch_size = 16

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.labels: list[str] = []

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def load_state(self, state: dict[str, Any]) -> None:
        self.labels = list(state["labels"])

    # -- data ------------------------------------------------------------------------------------
    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        from datasets import Dataset

        path = Path(spec.path)
        fmt = spec.format or "auto"
        if fmt == "auto":
            fmt = JSON_SUFFIXES.get(path.suffix.lower(), "conll")
        if fmt == "csv":
            raise ConfigError(
                f"{path}: token classification reads CoNLL column files (data.format: conll) "
                "or JSON/JSONL records with a list of tokens and a list of tags, not CSV."
            )
        o = self.options
        if fmt in ("json", "jsonl"):
            tag_fields = [o.tags_field] if isinstance(o.tags_field, str) else o.tags_field
            rows = read_tagged_records(
                path, fmt, o.tokens_field, tag_fields if labelled else None, self.data_cfg.label_map
            )
        else:  # conll, or tsv (tab-separated CoNLL columns)
            rows = read_conll(path, o.tag_column if labelled else None, o.token_column)
            for row in rows:
                row["where"] = [
                    f"{path}, line {row['line'] + i}" for i in range(len(row["tokens"]))
                ]
        columns: dict[str, list[Any]] = {
            "words": [r["tokens"] for r in rows],
            "text": [" ".join(r["tokens"]) for r in rows],
            "line": [r["line"] for r in rows],
        }
        if labelled:
            tags = self._bio_tags(rows, path)
            if fit:
                self._fit_labels(tags, path)
            columns["tags"] = [self._encode(t, r["where"]) for t, r in zip(tags, rows, strict=True)]
        return Dataset.from_dict(columns)

    def _bio_tags(self, rows: list[dict[str, Any]], path: Path) -> list[list[str]]:
        for row in rows:
            for tag, loc in zip(row["tags"], row["where"], strict=True):
                split_tag(tag, loc)  # raises with the exact line on a malformed tag
        starts = [f"{path}, sentence at line {r['line']}" for r in rows]
        return to_bio([r["tags"] for r in rows], self.options.tag_scheme, starts)

    def _fit_labels(self, tags: list[list[str]], path: Path) -> None:
        kinds = sorted({t[2:] for sentence in tags for t in sentence if t != "O"})
        if not kinds:
            raise DataError(
                f"{path}: the training data has no entities (every tag is O): nothing to learn. "
                "Is task.tag_column the NER column?"
            )
        # Both B- and I- for every type, so an entity longer than any seen in training is valid.
        self.labels = ["O"] + [f"{p}-{k}" for k in kinds for p in ("B", "I")]

    def _encode(self, tags: list[str], where: list[str]) -> list[int]:
        index = {name: i for i, name in enumerate(self.labels)}
        ids = []
        for tag, loc in zip(tags, where, strict=True):
            if tag not in index:
                kinds = sorted({name[2:] for name in self.labels if name != "O"})
                raise DataError(
                    f"{loc}: tag {tag!r} has an entity type the training data never uses "
                    f"(known types: {', '.join(kinds)}). Fix the file, or map the tag with "
                    "data.label_map."
                )
            ids.append(index[tag])
        return ids

    def input_columns(self, records: list[str] | list[dict[str, Any]]) -> dict[str, list[Any]]:
        """Raw texts are split into words (character spans kept); records with a list of
        tokens are used as given, joined by single spaces."""
        return input_columns(records, self.options.tokens_field)

    def label_counts(self, dataset: Any) -> dict[str, int]:
        """Entities per type."""
        from seqeval.metrics.sequence_labeling import get_entities

        counts: Counter[str] = Counter()
        for ids in dataset["tags"]:
            counts.update(kind for kind, _, _ in get_entities([self.labels[i] for i in ids]))
        return dict(sorted(counts.items()))

    def tokenize(self, dataset: Any, tokenizer: Any) -> Any:
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                f"Token classification needs a fast (Rust) tokenizer for its offset mapping; "
                f"{type(tokenizer).__name__} is not one."
            )
        max_length = self.model_cfg.max_length
        labelled = "tags" in dataset.column_names
        given_spans = "starts" in dataset.column_names

        def encode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            if given_spans:
                texts = batch["text"]
                spans = [
                    list(zip(s, e, strict=True))
                    for s, e in zip(batch["starts"], batch["ends"], strict=True)
                ]
            else:
                texts, spans = map(list, zip(*(join_words(w) for w in batch["words"]), strict=True))
            rows = encode_words(tokenizer, texts, spans, max_length)
            out: dict[str, list] = {k: [r[k] for r in rows] for k in rows[0]}
            if labelled:
                out["labels"] = [
                    align_labels(r["word_ids"], batch["tags"][r["example"]]) for r in rows
                ]
            out["word_ids"] = [[-1 if w is None else w for w in r["word_ids"]] for r in rows]
            out["example"] = [indices[r["example"]] for r in rows]
            out["length"] = [len(r["input_ids"]) for r in rows]
            return out

        return dataset.map(
            encode,
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            desc="tokenizing",
        )

    def collator(self, tokenizer: Any) -> Any:
        return RightPadCollator(tokenizer, label_fill=IGNORE)  # labels: word-first tokens

    # -- model -----------------------------------------------------------------------------------
    def build_model(self, backbone: nn.Module) -> nn.Module:
        return TokenClassifier(backbone, len(self.labels))

    # -- outputs ---------------------------------------------------------------------------------
    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """Entity metrics from padded token logits and -100-masked token labels: the Trainer's
        per-epoch evaluation, which scores each window of a long input on its own (`evaluate`
        merges the windows back into whole examples first)."""
        predicted = np.asarray(logits).argmax(-1)
        y_true, y_pred = [], []
        for pred, gold in zip(predicted, np.asarray(labels), strict=True):
            keep = gold != IGNORE
            y_true.append([self.labels[i] for i in gold[keep]])
            y_pred.append([self.labels[i] for i in pred[keep]])
        return entity_metrics(y_true, y_pred)

    def decode(self, logits: np.ndarray | list[np.ndarray]) -> list[dict[str, Any]]:
        """Per-token tags from per-token logits (words and offsets come from `predict`)."""
        return [{"token_tags": [self.labels[i] for i in np.argmax(row, -1)]} for row in logits]

    def _word_predictions(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        encoded: Any,
        batch_size: int,
        progress: bool,
    ) -> list[tuple[list[int], list[float], bool]]:
        """(tag ids, probabilities, some word lost) per example, read at each word's first
        token over all of the example's windows; a word without a token (one word longer than
        max_length, or characters the tokenizer drops) is predicted O with score 0."""
        from tunewise.evaluation.inference import predict_logits

        rows = predict_logits(
            model, encoded, self.collator(tokenizer), batch_size, progress, per_token=True
        )
        tags = [[0] * len(words) for words in dataset["words"]]  # 0 is "O"
        scores = [[0.0] * len(words) for words in dataset["words"]]
        seen = [[False] * len(words) for words in dataset["words"]]
        for logits, ids, example in zip(rows, encoded["word_ids"], encoded["example"], strict=True):
            z = np.exp(logits - logits.max(-1, keepdims=True))
            probs = z / z.sum(-1, keepdims=True)
            best, top = probs.argmax(-1).tolist(), probs.max(-1).tolist()
            for position, word in enumerate(ids):
                if word >= 0 and not seen[example][word]:  # the word's first token
                    seen[example][word] = True
                    tags[example][word] = best[position]
                    scores[example][word] = top[position]
        return [(t, sc, not all(se)) for t, sc, se in zip(tags, scores, seen, strict=True)]

    def evaluate(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        encoded: Any | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ) -> dict[str, Any]:
        if encoded is None:
            encoded = self.tokenize(dataset, tokenizer)
        predictions = self._word_predictions(
            model, tokenizer, dataset, encoded, batch_size, progress
        )
        y_true = [[self.labels[i] for i in gold] for gold in dataset["tags"]]
        y_pred = [[self.labels[i] for i in tags] for tags, _, _ in predictions]
        metrics = entity_metrics(y_true, y_pred)
        # Examples with a word that got no token (a single word longer than max_length, or one
        # the tokenizer drops entirely): such words count as predicted O.
        metrics["truncated_examples"] = sum(lost for _, _, lost in predictions)
        return metrics

    def predict(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        """Entities with character offsets on each input's text, plus per-word tags."""
        if "starts" not in dataset.column_names:  # read() output: words joined by spaces
            spans = [join_words(w)[1] for w in dataset["words"]]
        else:
            spans = [
                list(zip(s, e, strict=True))
                for s, e in zip(dataset["starts"], dataset["ends"], strict=True)
            ]
        encoded = self.tokenize(dataset, tokenizer)
        predictions = self._word_predictions(
            model, tokenizer, dataset, encoded, batch_size, progress
        )
        out = []
        for text, words, word_spans, (ids, scores, lost) in zip(
            dataset["text"], dataset["words"], spans, predictions, strict=True
        ):
            tags = [self.labels[i] for i in ids]
            entities = entity_spans(text, word_spans, tags, scores)
            out.append(
                {"entities": entities, "tokens": list(words), "tags": tags, "truncated": lost}
            )
        return out
