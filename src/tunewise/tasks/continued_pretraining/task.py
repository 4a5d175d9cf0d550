"""Continued (domain-adaptive) pretraining on raw text, with the model's own pretraining loss.

Decoders learn causal LM, encoders masked LM (decided from the model's config unless
`task.objective` says). Documents are tokenized, joined (decoders: each ends with EOS; encoders:
each keeps its [CLS] ... [SEP]) and cut into blocks of `model.max_length` tokens, so no compute
goes to padding and long documents are used whole. Evaluation reports token-level loss and
perplexity; the recipe also scores the untrained model (`evaluate_before_training`), so a run
records perplexity before and after. Masked-LM evaluation masks each block with a seed of its
own, so before/after (and any batch size) see exactly the same masks.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field
from torch import nn

from tunewise.config import SplitFile, TaskOptions
from tunewise.errors import ConfigError
from tunewise.inference.batches import IGNORE
from tunewise.tasks.base import Task
from tunewise.tasks.continued_pretraining.corpus import read_documents
from tunewise.tasks.packing import pack

LOGITS_BUDGET = 1 << 25  # floats of logits per evaluation batch (128 MB): bounds batch size


class ContinuedPretrainingOptions(TaskOptions):
    model_config = ConfigDict(extra="forbid")
    type: Literal["continued_pretraining"] = "continued_pretraining"
    objective: Literal["auto", "causal", "masked"] = "auto"  # auto: causal for decoders
    mlm_probability: float = Field(0.15, gt=0, lt=1)  # masked LM: share of tokens to predict
    eval_mask_seed: int = 0  # masked LM: seed of the evaluation masks
    # Plain-text files: one document per line, or per paragraph (blocks between blank lines).
    text_documents: Literal["line", "paragraph"] = "line"


class _AutoModel:
    """`auto_model` that depends on the model: "AutoModelForCausalLM" on the class (what
    strategies inspect), and on a task instance (what `assemble` loads) the class that fits the
    objective: "AutoModelForMaskedLM" for encoders."""

    def __get__(self, task: ContinuedPretrainingTask | None, owner: type) -> str:
        if task is not None and task.objective == "masked":
            return "AutoModelForMaskedLM"
        return "AutoModelForCausalLM"


class ContinuedPretrainingTask(Task):
    name = "continued_pretraining"
    predict_fields = ("text",)
    Options = ContinuedPretrainingOptions
    default_metric = "loss"
    greater_is_better = False
    # The LM head is pretrained (decoders: usually tied to the embeddings); see build_model.
    head_modules: ClassVar[list[str]] = []
    generative = True
    evaluate_before_training = True
    auto_model = _AutoModel()  # type: ignore[assignment]

    # -- which model: decided by the base model's architecture ----------------------------------
    @cached_property
    def objective(self) -> str:
        if self.options.objective != "auto":
            return self.options.objective
        from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

        from tunewise.models import is_causal_lm, load_config, resolve

        m = self.model_cfg
        config = load_config(
            resolve(m.name, m.gguf_file, m.revision), trust_remote_code=m.trust_remote_code
        )
        if is_causal_lm(config):
            return "causal"
        if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
            return "masked"
        raise ConfigError(
            f"continued_pretraining needs a decoder (causal LM) or an encoder with a masked-LM "
            f"head; '{m.name}' is a '{config.model_type}' model, which is neither."
        )

    def state(self) -> dict[str, Any]:
        return {"objective": self.objective}

    def load_state(self, state: dict[str, Any]) -> None:
        self.__dict__["objective"] = state["objective"]

    # -- data ------------------------------------------------------------------------------------
    def read(self, spec: SplitFile, *, fit: bool = False, labelled: bool = True) -> Any:
        """Documents as {text, line}: plain text files or records with a text field."""
        from datasets import Dataset

        docs = read_documents(spec, self.options.text_documents)
        return Dataset.from_dict({"text": [d for _, d in docs], "line": [n for n, _ in docs]})

    def tokenize(self, dataset: Any, tokenizer: Any, per_document: bool = False) -> Any:
        """Blocks of `model.max_length` tokens packed from all documents (per_document: each
        document packed on its own, with a `doc` column, for per-text scores)."""
        from datasets import Dataset

        ids = self._document_ids(dataset, tokenizer)
        size = self.model_cfg.max_length
        if per_document:
            rows = [(d, block) for d, seq in enumerate(ids) for block in pack([seq], size)]
            blocks, docs = [b for _, b in rows], [d for d, _ in rows]
        else:
            blocks, docs = pack(ids, size), None
        columns: dict[str, list] = {
            "input_ids": blocks,
            "attention_mask": [[1] * len(b) for b in blocks],
            "length": [len(b) for b in blocks],
        }
        if self.objective == "causal":
            columns["labels"] = blocks
        if docs is not None:
            columns["doc"] = docs
        return Dataset.from_dict(columns)

    def _document_ids(self, dataset: Any, tokenizer: Any) -> list[list[int]]:
        """Each document's token ids with the model's special tokens; decoders end it with EOS
        (the tokenizer's separator when it has no EOS) so documents stay apart once packed."""
        end = (
            tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        )
        causal = self.objective == "causal"

        def encode(batch: dict[str, list]) -> dict[str, list]:
            out = tokenizer(batch["text"], verbose=False)["input_ids"]
            if causal and end is not None:
                out = [seq if seq and seq[-1] == end else [*seq, end] for seq in out]
            return {"ids": out}

        encoded = dataset.map(
            encode, batched=True, remove_columns=dataset.column_names, desc="tokenizing"
        )
        return encoded["ids"]

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForLanguageModeling, DataCollatorForSeq2Seq

        if self.objective == "causal":  # pads labels with -100 (EOS may double as padding)
            return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
        return DataCollatorForLanguageModeling(
            tokenizer, mlm=True, mlm_probability=self.options.mlm_probability
        )

    # -- model -----------------------------------------------------------------------------------
    def build_model(self, backbone: nn.Module) -> nn.Module:
        """The LM itself. Masked LM: the prediction head's own layers (not its decoder, which
        shares the embedding matrix) count as head modules, so every strategy trains them:
        sentence-embedding checkpoints such as all-MiniLM-L6-v2 ship without them."""
        if self.objective == "masked":
            self.head_modules = _untied_head_modules(backbone)
        return backbone

    # -- evaluation --------------------------------------------------------------------------------
    def trainer_metrics(self) -> None:
        return None  # the Trainer's eval loss picks the best epoch; perplexity comes at the end

    def compute_metrics(self, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """`logits`: summed negative log-likelihood per row; `labels`: target tokens per row."""
        nll, count = float(np.sum(logits)), int(np.sum(labels))
        loss = nll / max(count, 1)
        return {"loss": loss, "perplexity": _perplexity(loss), "n_tokens": count}

    def decode(self, logits: np.ndarray) -> list[dict[str, Any]]:
        return [{"loss": float(row[0]), "perplexity": _perplexity(float(row[0]))} for row in logits]

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
        nll, count = self._row_nll(model, tokenizer, encoded, batch_size, progress)
        metrics = self.compute_metrics(nll, count)
        metrics.update({"n_examples": len(dataset), "n_blocks": len(encoded)})
        return metrics

    def predict(
        self,
        model: nn.Module,
        tokenizer: Any,
        dataset: Any,
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        """Each text's loss, perplexity and number of scored tokens under the model."""
        encoded = self.tokenize(dataset, tokenizer, per_document=True)
        nll, count = self._row_nll(model, tokenizer, encoded, batch_size, progress)
        sums, counts = np.zeros(len(dataset)), np.zeros(len(dataset), dtype=np.int64)
        np.add.at(sums, encoded["doc"], nll)
        np.add.at(counts, encoded["doc"], count)
        out = []
        for s, c in zip(sums, counts, strict=True):
            loss = float(s / c) if c else float("nan")
            out.append({"loss": loss, "perplexity": _perplexity(loss), "n_tokens": int(c)})
        return out

    def summary(self, metrics: dict[str, Any]) -> str:
        return (
            f"loss={metrics['loss']:.4f}, perplexity={metrics['perplexity']:.3f}, "
            f"tokens={metrics['n_tokens']}, documents={metrics['n_examples']}"
        )

    @torch.inference_mode()
    def _row_nll(
        self, model: nn.Module, tokenizer: Any, encoded: Any, batch_size: int, progress: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Summed token NLL and number of target tokens for every block, in row order."""
        from transformers import DataCollatorForSeq2Seq

        from tunewise.inference.batches import model_batches

        model.eval()
        rows = self._eval_rows(encoded, tokenizer)
        pad = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
        vocab = len(tokenizer)
        longest = max(encoded["length"], default=1)
        batch_size = max(1, min(batch_size, LOGITS_BUDGET // (longest * vocab)))
        nll, count = np.zeros(len(rows)), np.zeros(len(rows), dtype=np.int64)
        batches = model_batches(
            model,
            rows,
            encoded["length"],
            pad,
            batch_size,
            progress=progress,
            desc="scoring",
            unit="block",
        )
        for indices, batch in batches:
            labels = batch.pop("labels")
            logits = model(**batch).logits.float()
            if self.objective == "causal":  # token t predicts token t + 1
                logits, labels = logits[:, :-1], labels[:, 1:]
            losses = nn.functional.cross_entropy(
                logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none"
            )
            nll[indices] = losses.sum(dim=1).double().cpu().numpy()
            count[indices] = (labels != IGNORE).sum(dim=1).cpu().numpy()
        return nll, count

    def _eval_rows(self, encoded: Any, tokenizer: Any) -> list[dict[str, list[int]]]:
        """Inputs and targets per block. Masked LM: the library collator masks each block
        with seed `eval_mask_seed + row`, independent of batching and of the run."""
        from transformers import DataCollatorForLanguageModeling

        rows = encoded.select_columns(["input_ids", "attention_mask"]).to_list()
        if self.objective == "causal":
            return [{**r, "labels": list(r["input_ids"])} for r in rows]
        out = []
        for i, r in enumerate(rows):
            masker = DataCollatorForLanguageModeling(
                tokenizer,
                mlm_probability=self.options.mlm_probability,
                seed=self.options.eval_mask_seed + i,
            )
            masked = masker([{"input_ids": r["input_ids"]}])
            out.append(
                {
                    "input_ids": masked["input_ids"][0].tolist(),
                    "attention_mask": r["attention_mask"],
                    "labels": masked["labels"][0].tolist(),
                }
            )
        return out


def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")


def _untied_head_modules(model: nn.Module) -> list[str]:
    """The largest submodules outside the base model whose weights are not shared with it."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if base is None:
        return []
    shared = {id(p) for p in base.parameters()}
    found: list[str] = []
    for name, module in model.named_modules():
        if not name or name.split(".")[0] == model.base_model_prefix:
            continue
        if any(name.startswith(f + ".") for f in found):
            continue
        params = list(module.parameters())
        if params and not any(id(p) in shared for p in params):
            found.append(name)
    return found
