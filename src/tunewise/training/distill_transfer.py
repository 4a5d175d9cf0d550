"""`distill.transfer`: unlabelled inputs the student learns from the teacher alone.

A teacher can label far more text than anyone annotated: Hinton et al. (2015) train the student
on a "transfer set", and DistilBERT / TinyBERT distil on unlabelled or augmented text. Here the
file's inputs join the training split with the label -100, so the task loss (which ignores -100,
and is 0 for a batch with no labelled example) skips them while the KD term covers every example.
Sequence classification only: a token-level KD term needs each example's labelled positions, and
a multi-label loss has no "no label" marker.
"""

from __future__ import annotations

from typing import Any

from tunewise.errors import ConfigError

IGNORE = -100  # the label the classification loss skips (torch's cross-entropy ignore_index)


def read(cfg: Any, task: Any) -> Any:
    """The transfer file's inputs as a Dataset (None without `distill.transfer`), checked and
    read before any model loads (the task's labels are known by now). Labels are not read."""
    from tunewise.config import SplitFile

    if not cfg.distill.transfer:
        return None
    if cfg.task.type != "classification":
        raise ConfigError(
            f"distill.transfer (unlabelled inputs for the teacher's term) is for task "
            f"'classification'; task '{cfg.task.type}' needs labelled positions for its KD term. "
            "Remove distill.transfer."
        )
    if getattr(task, "multi_label", False):
        raise ConfigError(
            "distill.transfer: this classification data is multi-label, whose loss has no "
            "'unlabelled' marker for the transfer inputs. Remove distill.transfer."
        )
    data = cfg.data
    spec = SplitFile(
        path=cfg.distill.transfer,
        format=data.format,
        text_column=data.text_column,
        text_pair_column=data.text_pair_column,
    )
    return task.read(spec, labelled=False)


def append(task: Any, tokenizer: Any, train: Any, transfer: Any) -> Any:
    """The tokenized training split followed by the transfer inputs, labelled -100."""
    from datasets import concatenate_datasets

    extra = task.tokenize(transfer, tokenizer)
    extra = extra.add_column("labels", [IGNORE] * len(extra))
    extra = extra.select_columns(train.column_names).cast(train.features)
    return concatenate_datasets([train, extra])
