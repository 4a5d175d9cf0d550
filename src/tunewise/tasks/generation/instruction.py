"""Instruction tuning on Alpaca-style records: `instruction`, optional `input`, `output`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tunewise.config import SplitFile
from tunewise.evaluation.text_metrics import rouge_scores
from tunewise.tasks.generation.base import GenerationOptions, GenerationTask
from tunewise.tasks.generation.readers import Row, instruction_row, read_instructions
from tunewise.tasks.generation.schema import CHAT_SCHEMA


class InstructionOptions(GenerationOptions):
    type: Literal["instruction"] = "instruction"
    # Loss and perplexity are the usual SFT figures; set > 0 to also score generated answers
    # against the reference outputs with ROUGE.
    eval_generate_samples: int = Field(0, ge=0)
    max_new_tokens: int = Field(256, gt=0)  # tokens generated per answer at most


class InstructionTask(GenerationTask):
    name = "instruction"
    predict_fields = ("instruction", "input")
    prepare_schema = CHAT_SCHEMA
    Options = InstructionOptions
    input_field = "instruction"
    long_field = "input"
    headline = ("rougeL",)

    def read_rows(self, spec: SplitFile, labelled: bool) -> list[Row]:
        return read_instructions(
            spec.path, spec.format, fields=self.options.fields, labelled=labelled
        )

    def normalise(
        self, record: dict[str, Any], where: str, index: int, fields: dict[str, str]
    ) -> Row:
        return instruction_row(record, where, index, fields, labelled=False)

    def user_text(self, row: Row) -> str:
        extra = row.get("input") or ""
        return f"{row['instruction']}\n\n{extra}" if extra.strip() else row["instruction"]

    def answer(self, row: Row) -> str:
        return row["output"]

    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, Any]:
        return rouge_scores(predictions, references)
