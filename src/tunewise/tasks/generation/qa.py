"""Generative QA: question + context → a short answer, scored with SQuAD exact match / F1 (the
same scorer as extractive QA, so the two routes compare)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tunewise.config import SplitFile
from tunewise.evaluation.squad import squad_scores
from tunewise.tasks.generation.base import GenerationOptions, GenerationTask
from tunewise.tasks.generation.readers import Row, qa_row, read_qa

PROMPT = (
    "Answer the question with a short phrase copied from the text.\n\n"
    "Text: {context}\n\nQuestion: {question}"
)


class GenerativeQAOptions(GenerationOptions):
    type: Literal["generative_qa"] = "generative_qa"
    max_new_tokens: int = Field(32, gt=0)  # tokens generated per answer at most


class GenerativeQATask(GenerationTask):
    name = "generative_qa"
    predict_fields = ("question", "context")
    Options = GenerativeQAOptions
    input_field = "question"
    long_field = "context"
    headline = ("exact_match", "f1")

    def read_rows(self, spec: SplitFile, labelled: bool) -> list[Row]:
        return read_qa(spec.path, spec.format, fields=self.options.fields, labelled=labelled)

    def normalise(
        self, record: dict[str, Any], where: str, index: int, fields: dict[str, str]
    ) -> Row:
        return qa_row(record, where, index, fields, labelled=False)

    def user_text(self, row: Row) -> str:
        return PROMPT.format(context=row["context"], question=row["question"])

    def source_text(self, row: Row) -> str:
        if self.options.prompt:
            return self.format_prompt(self.options.prompt, row)
        return f"question: {row['question']} context: {row['context']}"  # T5's SQuAD format

    def answer(self, row: Row) -> str:
        return row["answers"][0] if row["answers"] else ""

    def references(self, row: Row) -> list[str]:
        return list(row["answers"])

    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, Any]:
        scores = squad_scores(predictions, references)
        return {"exact_match": scores["exact_match"], "f1": scores["f1"]}
