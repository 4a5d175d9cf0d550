"""One loaded run as the server uses it: the `Predictor` (rebuilt from the run's manifest), input
checks that name the field, batched prediction, and generation with per-request settings."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunewise.errors import TunewiseError
from tunewise.serving.fields import check_records
from tunewise.serving.predictor import Predictor
from tunewise.serving.problems import RequestError

# Tasks whose inputs the base `Task.records_to_dataset` takes unchecked: a `text` (+ `text_pair`).
TEXT_TASKS = ("classification", "continued_pretraining")
# An encoder forward pass's fixed cost in tokens' worth of compute: the server cuts a micro-batch
# into length-sorted passes where one more pass costs less than the padding it saves (chosen on
# SST-2 train sentences with minilm, the same for torch and onnxruntime:
# `benchmarks/serve_forward_cost.py`).
FORWARD_COST = 16.0


@dataclass(frozen=True)
class GenParams:
    """Per-request generation settings; None keeps the run's own (task options)."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()

    def sampled(self, options: Any) -> dict[str, float]:
        """A sampled request's temperature and top_p: the request's, else the run's. The
        batched `generate` path and the continuous batcher both take them from here."""
        return {
            "temperature": float(self.temperature or options.temperature),
            "top_p": float(self.top_p or options.top_p),
        }


class Engine:
    def __init__(
        self,
        run_dir: str | Path,
        device: str | None = None,
        trust_remote_code: bool = False,
        backend: str = "torch",
    ) -> None:
        import datasets

        from tunewise.serving.batch_predict import fold_for_inference

        self.predictor = Predictor(run_dir, device=device, trust_remote_code=trust_remote_code)
        # A server only predicts: LoRA / IA3 / diff pruning folded into the weights skip their
        # extra matmuls on every request (same outputs within float rounding, as `predict`).
        self.folded = fold_for_inference(self.predictor)
        datasets.disable_progress_bars()  # no "tokenizing" bar in the server log per request
        self.run_dir = str(run_dir)
        self.task = self.predictor.task
        self.task_name: str = self.predictor.config.task.type
        self.generative = hasattr(self.task, "generate")
        self.model_id = Path(run_dir).resolve().name
        self.created = int(Path(run_dir, "tunewise.json").stat().st_mtime)
        config = getattr(self.predictor.model, "config", None)
        # prompt + completion tokens the model can attend to (None: not bounded by positions)
        self.context: int | None = getattr(config, "max_position_embeddings", None)
        self.continuous: Any = None  # the server's ContinuousGenerator (causal LMs), if any
        self._local = threading.local()  # per model worker: its tokenizer
        # encoder tasks on CPU: onnxruntime runs the forward pass (auto: where it fits)
        from tunewise.serving.onnx_backend import pick_backend

        self.backend, self._onnx_dir, self.export, self.backend_note = pick_backend(
            self.predictor, backend
        )

    # -- metadata ----------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """A /v1/models entry: OpenAI's fields plus what the manifest says about the run."""
        m = self.predictor.manifest
        state = m.get("task", {}).get("state", {})
        validation = m.get("metrics", {}).get("validation", {})
        return {
            "id": self.model_id,
            "object": "model",
            "created": self.created,
            "owned_by": "tunewise",
            "run": self.run_dir,
            "task": self.task_name,
            "generative": self.generative,
            "labels": state.get("labels"),
            "base_model": m.get("base_model", {}).get("name", self.predictor.config.model.name),
            "strategy": m.get("strategy", {}).get("name"),
            "max_length": self.predictor.config.model.max_length,
            "metrics": {k: v for k, v in validation.items() if isinstance(v, (int, float))},
            "promoted": m.get("promoted"),
            "backend": self.backend,
            **({"onnx_max_abs_diff": self.export["max_abs_diff"]} if self.export else {}),
            **({"backend_note": self.backend_note} if self.backend_note else {}),
        }

    # -- inputs ------------------------------------------------------------------------------------
    def check(self, inputs: list[Any]) -> tuple[list[Any], bool]:
        """Inputs the task can predict from (texts or records), and whether they hold text pairs;
        RequestError 422 naming `inputs[i].field` otherwise."""
        if self.task_name not in TEXT_TASKS:
            check_records(self.task_name, self.task.options, inputs)  # names inputs[i].field
            try:  # these tasks check their records themselves, naming input and field
                self.task.records_to_dataset(inputs)
            except TunewiseError as exc:
                raise RequestError(422, f"inputs: {exc}", "inputs") from None
            return inputs, False
        out: list[Any] = []
        pairs = {isinstance(x, dict) and "text_pair" in x for x in inputs}
        if len(pairs) > 1:
            raise RequestError(
                422, "inputs: give 'text_pair' in every record or in none.", "inputs"
            )
        for i, item in enumerate(inputs):
            if isinstance(item, str):
                out.append(item)
                continue
            rec = {}
            for name in ("text", "text_pair") if True in pairs else ("text",):
                value = item.get(name)
                if not isinstance(value, str) or not value.strip():
                    got = "missing" if name not in item else f"{type(value).__name__} {value!r:.40}"
                    raise RequestError(
                        422, f"inputs[{i}].{name} must be non-empty text ({got}).", f"inputs[{i}]"
                    )
                rec[name] = value
            out.append(rec)
        return out, True in pairs

    def as_record(self, item: Any) -> dict[str, Any]:
        """An input as a record with the task's input fields (what the request log keeps)."""
        if isinstance(item, dict):
            return item
        if self.task_name == "chat":
            return {"messages": [{"role": "user", "content": item}]}
        return (
            {getattr(self.task, "input_field", "text"): item} if self.generative else {"text": item}
        )

    # -- running -----------------------------------------------------------------------------------
    def share_threads(self, threads: int) -> None:
        """The forward pass's CPU threads, once the server shares the cores among workers (torch
        reads its process-wide setting; an onnxruntime session is rebuilt)."""
        if self.backend == "onnx":
            self.predictor.model.set_threads(threads)

    def tokenizer(self) -> Any:
        """This worker thread's own copy of the tokenizer: a fast tokenizer is not safe to call
        from two threads at once (its truncation settings and padding side are mutable state)."""
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            tokenizer = self._local.tokenizer = copy.deepcopy(self.predictor.tokenizer)
        return tokenizer

    def predict(self, inputs: list[Any], batch_size: int) -> list[dict[str, Any]]:
        from tunewise.inference.batches import forward_cost

        model, tokenizer = self.predictor.model, self.tokenizer()
        if self.generative:
            return self.task.predict_records(model, tokenizer, inputs, max(64, batch_size))
        # Random requests padded to one batch waste about half the FLOPs on padding; cut by cost,
        # a micro-batch runs as a few passes of similar lengths instead.
        with forward_cost(FORWARD_COST):
            return self.task.predict_records(model, tokenizer, inputs, batch_size)

    def prompts(self, records: list[Any]) -> list[list[int]]:
        """Generation prompts (token ids) for records, as the task builds them; RequestError 422
        when a record does not fit the task."""
        try:
            dataset = self.task.records_to_dataset(records)
        except TunewiseError as exc:
            raise RequestError(422, str(exc), "messages") from None
        return self.task.prompts(dataset, self.predictor.tokenizer)

    def generate(
        self,
        prompts: list[list[int]],
        params: GenParams,
        streamers: list[Any] | None = None,
        cancels: list[threading.Event] | None = None,
    ) -> list[tuple[str, int]]:
        """Generated texts (stripped, as `tunewise predict` returns them) for token prompts, each
        with the number of tokens generated for it (end-of-sequence excluded). `streamers` (one
        per prompt) receive each row's tokens as they come; a row stops once its `cancels` event
        is set (its client went away)."""
        from transformers import StoppingCriteria, StoppingCriteriaList, StopStringCriteria

        from tunewise.tasks.generation.inference import generate_texts, generation_kwargs
        from tunewise.training.batching import pack_batches

        options = self.task.options
        update: dict[str, Any] = {}
        if params.max_tokens is not None:
            update["max_new_tokens"] = params.max_tokens
        if params.temperature == 0:
            update["do_sample"] = False
        elif params.temperature is not None or params.top_p is not None:
            update.update(do_sample=True, **params.sampled(options))
        if streamers is not None:
            update["num_beams"] = 1  # transformers streams greedy or sampled search only
        criteria = StoppingCriteriaList()
        if params.stop:
            criteria.append(StopStringCriteria(self.predictor.tokenizer, list(params.stop)))
        options = options.model_copy(update=update)
        tokenizer, model = self.predictor.tokenizer, self.predictor.model
        batch_size = min(len(prompts), 16)  # the KV cache bounds the batch, as in the task
        eos = generation_kwargs(options, tokenizer, model).get("eos_token_id") or []
        # generate_texts runs these batches in this order (length-sorted, seed None)
        order = pack_batches([len(p) for p in prompts], batch_size, seed=None)
        beams = options.num_beams > 1  # transformers streams no beam search: count afterwards
        counter = None if beams else TokenCounter(order, set(eos), forward=streamers)
        if cancels is not None and counter is not None:

            class Cancelled(StoppingCriteria):  # per row: its client went away
                def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                    import torch

                    rows = counter.order[counter.batch]
                    return torch.tensor([cancels[i].is_set() for i in rows], dtype=torch.bool)

            criteria.append(Cancelled())
        texts = generate_texts(
            model,
            tokenizer,
            prompts,
            options,
            causal=not self.task.seq2seq,
            batch_size=batch_size,
            streamer=counter,
            stopping_criteria=criteria,
        )
        counts = (
            counter.counts
            if counter is not None
            else [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        )
        return list(zip(texts, counts, strict=True))


class TokenCounter:
    """A transformers streamer that counts each row's generated tokens up to its end-of-sequence
    (rows that finished are padded by `generate`) and hands each row's tokens to that prompt's
    own streamer in `forward` (the TextIteratorStreamer of a streamed response), so one batched
    `generate` feeds several streams. Each `generate` call puts its prompt first, then one new
    token per row and step, and ends with `end()`; `order` is its batches of prompt indices."""

    def __init__(self, order: list[list[int]], eos: set[int], forward: list[Any] | None = None):
        self.order, self.eos, self.forward = order, eos, forward
        self.counts = [0] * sum(len(b) for b in order)
        self.batch, self._prompt, self._done = -1, True, [False]

    def put(self, value: Any) -> None:
        prompt = self._prompt
        if prompt:  # the next batch's prompt
            self.batch, self._prompt = self.batch + 1, False
            self._done = [False] * len(self.order[self.batch])
        rows = self.order[self.batch]
        value = value.reshape(len(rows), -1)
        if self.forward is not None:
            for row, index in enumerate(rows):
                self.forward[index].put(value[row : row + 1] if prompt else value[row])
        if prompt:
            return
        for row, token in enumerate(value.tolist()):
            for t in token:
                if self._done[row] or t in self.eos:
                    self._done[row] = True
                else:
                    self.counts[rows[row]] += 1

    def end(self) -> None:
        if self.forward is not None:
            for index in self.order[self.batch]:
                self.forward[index].end()
        self._prompt = True
