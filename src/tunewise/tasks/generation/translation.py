"""Translation: `source` → `target`, scored with corpus BLEU and chrF (sacrebleu)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tunewise.config import SplitFile
from tunewise.evaluation.text_metrics import bleu_chrf
from tunewise.tasks.generation.base import GenerationOptions, GenerationTask
from tunewise.tasks.generation.readers import Row, pair_row, read_pairs
from tunewise.tasks.generation.schema import PAIR_SCHEMA


class TranslationOptions(GenerationOptions):
    type: Literal["translation"] = "translation"
    source_language: str | None = None  # e.g. English; named in the prompt when given
    target_language: str | None = None  # e.g. German
    max_new_tokens: int = Field(96, gt=0)  # tokens generated per answer at most


class TranslationTask(GenerationTask):
    name = "translation"
    predict_fields = ("source",)
    prepare_schema = PAIR_SCHEMA
    Options = TranslationOptions
    input_field = "source"
    long_field = "source"
    headline = ("bleu", "chrf")

    def read_rows(self, spec: SplitFile, labelled: bool) -> list[Row]:
        return read_pairs(
            spec.path,
            "source",
            "target",
            spec.format,
            fields=self.options.fields,
            labelled=labelled,
        )

    def normalise(
        self, record: dict[str, Any], where: str, index: int, fields: dict[str, str]
    ) -> Row:
        return pair_row(record, where, index, fields, False, source="source", target="target")

    def user_text(self, row: Row) -> str:
        src, tgt = self.options.source_language, self.options.target_language
        into = (f" from {src}" if src else "") + (f" into {tgt}" if tgt else "")
        ask = f"Translate the following text{into}. Reply with the translation only."
        return f"{ask}\n\n{row['source']}"

    def source_text(self, row: Row) -> str:
        if self.options.prompt:
            return self.format_prompt(self.options.prompt, row)
        src, tgt = self.options.source_language, self.options.target_language
        if src and tgt:  # T5's task prefix
            return f"translate {src} to {tgt}: {row['source']}"
        return row["source"]

    def answer(self, row: Row) -> str:
        return row["target"]

    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, Any]:
        return bleu_chrf(predictions, references)
