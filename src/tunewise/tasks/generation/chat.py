"""Multi-turn dialogue: `messages` [{role, content}] or ShareGPT `conversations`; the loss is on
every assistant turn, generation continues the conversation after its last user turn."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tunewise.config import SplitFile
from tunewise.evaluation.text_metrics import rouge_scores
from tunewise.tasks.generation.base import GenerationOptions, GenerationTask
from tunewise.tasks.generation.readers import Row, chat_row, read_chats
from tunewise.tasks.generation.schema import CHAT_SCHEMA


class ChatOptions(GenerationOptions):
    type: Literal["chat"] = "chat"
    eval_generate_samples: int = Field(0, ge=0)  # > 0: ROUGE of the last assistant turn
    max_new_tokens: int = Field(256, gt=0)  # tokens generated per answer at most


class ChatTask(GenerationTask):
    name = "chat"
    predict_fields = ("messages",)
    prepare_schema = CHAT_SCHEMA
    Options = ChatOptions
    input_field = "content"
    supports_seq2seq = False
    headline = ("rougeL",)

    def read_rows(self, spec: SplitFile, labelled: bool) -> list[Row]:
        return read_chats(spec.path, spec.format, fields=self.options.fields, labelled=labelled)

    def normalise(
        self, record: dict[str, Any], where: str, index: int, fields: dict[str, str]
    ) -> Row:
        if set(record) == {"content"}:  # a bare string from predict: one user turn
            record = {"messages": [{"role": "user", "content": record["content"]}]}
        return chat_row(record, where, index, fields, labelled=False)

    def conversation(self, row: Row, with_answer: bool) -> list[dict[str, str]]:
        messages = [dict(m) for m in row["messages"]]
        if self.options.system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.options.system_prompt})
        if not with_answer and messages[-1]["role"] == "assistant":
            messages = messages[:-1]  # generate the last answer
        return messages

    def answer(self, row: Row) -> str:
        last = row["messages"][-1]
        return last["content"] if last["role"] == "assistant" else ""

    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, Any]:
        return rouge_scores(predictions, references)
