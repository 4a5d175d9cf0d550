"""Summarization: `document` → `summary`, scored with ROUGE-1/2/L."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tunewise.config import SplitFile
from tunewise.evaluation.text_metrics import rouge_scores
from tunewise.tasks.generation.base import GenerationOptions, GenerationTask
from tunewise.tasks.generation.readers import Row, pair_row, read_pairs
from tunewise.tasks.generation.schema import PAIR_SCHEMA


class SummarizationOptions(GenerationOptions):
    type: Literal["summarization"] = "summarization"
    max_new_tokens: int = Field(128, gt=0)  # tokens generated per answer at most


class SummarizationTask(GenerationTask):
    name = "summarization"
    predict_fields = ("document",)
    prepare_schema = PAIR_SCHEMA
    Options = SummarizationOptions
    input_field = "document"
    long_field = "document"
    headline = ("rouge1", "rouge2", "rougeL")

    def read_rows(self, spec: SplitFile, labelled: bool) -> list[Row]:
        return read_pairs(
            spec.path,
            "document",
            "summary",
            spec.format,
            fields=self.options.fields,
            labelled=labelled,
        )

    def normalise(
        self, record: dict[str, Any], where: str, index: int, fields: dict[str, str]
    ) -> Row:
        return pair_row(record, where, index, fields, False, source="document", target="summary")

    def user_text(self, row: Row) -> str:
        return f"Summarize the following article.\n\n{row['document']}"

    def source_text(self, row: Row) -> str:
        if self.options.prompt:
            return self.format_prompt(self.options.prompt, row)
        return f"summarize: {row['document']}"  # T5's task prefix; harmless for BART

    def answer(self, row: Row) -> str:
        return row["summary"]

    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, Any]:
        return rouge_scores(predictions, references)
