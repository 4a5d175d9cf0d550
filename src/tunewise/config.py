"""The run configuration: YAML in, validated pydantic objects out.

Every section forbids unknown keys (with a "did you mean" hint) and errors name the key path and
the bad value. Task and strategy sections are validated in a second step by the options model the
registered task / strategy declares, so a new strategy brings its own knobs without touching this
file.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    model_validator,
)

from tunewise.config_errors import format_validation_error
from tunewise.config_source import apply_override, read_yaml
from tunewise.errors import ConfigError
from tunewise.prepare_options import PrepareConfig
from tunewise.tracking.options import TrackingConfig
from tunewise.tune.options import TuneConfig


class Section(BaseModel):
    """Base for config sections: unknown keys are errors."""

    # allow_inf_nan=False: `.inf` / `.nan` are errors, not values (e.g. training.epochs: .inf)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ModelConfig(Section):
    name: str  # hub id, local directory, or a built-in alias (minilm, smollm2-135m)
    revision: str | None = None  # hub revision (branch, tag or commit)
    gguf_file: str | None = None  # file name inside `name` when the weights are GGUF
    max_length: int = Field(128, gt=0)  # tokens kept per example (longer inputs are truncated)
    # How a sequence becomes one vector for the head: mean of token states, the first ([CLS])
    # token, or the last real token (decoders). `auto`: last for causal LMs, mean otherwise.
    pooling: Literal["auto", "mean", "cls", "last"] = "auto"
    trust_remote_code: bool = False  # run the model repository's own code (custom architectures)


class SplitFile(Section):
    """One data file, optionally with column names that differ from the `data` defaults."""

    path: str  # the data file
    # None: data.format
    format: Literal["auto", "jsonl", "json", "csv", "tsv", "squad", "conll"] | None = None
    text_column: str | list[str] | None = None  # None: data.text_column
    text_pair_column: str | list[str] | None = None  # None: data.text_pair_column
    label_column: str | None = None  # None: data.label_column


class DataConfig(Section):
    train: str | SplitFile  # training file (a path, or {path, format, columns...})
    validation: str | SplitFile | None = None  # None: hold out `validation_fraction` of train
    test: str | SplitFile | None = None  # held-out test file, evaluated once after training
    # auto: from the extension; squad: SQuAD-format JSON (extractive QA); conll: token-per-line
    # column files (token classification, which also reads any non-JSON file as CoNLL)
    format: Literal["auto", "jsonl", "json", "csv", "tsv", "squad", "conll"] = "auto"
    # Column names; a list means "the first of these that the file has".
    text_column: str | list[str] = "text"
    text_pair_column: str | list[str] | None = None  # second text for pair tasks (NLI, QA-match)
    label_column: str = "label"  # column holding the label
    label_map: dict[str | int, str] | None = (
        None  # raw label value -> label name (e.g. {0: negative})
    )
    label_separator: str | None = None  # multi-label given as one string, e.g. "sports,politics"
    # share of train held out when no validation file is given
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    # Validate / clean / deduplicate / filter / split / augment before training (see
    # tunewise.prepare_options.PrepareConfig); None: the files are read as they are.
    prepare: PrepareConfig | None = None

    def split(self, name: str) -> SplitFile | None:
        value = getattr(self, name)
        if value is None:
            return None
        spec = SplitFile(path=value) if isinstance(value, str) else value
        return SplitFile(
            path=spec.path,
            format=spec.format or self.format,
            text_column=spec.text_column or self.text_column,
            text_pair_column=spec.text_pair_column or self.text_pair_column,
            label_column=spec.label_column or self.label_column,
        )


class TaskOptions(BaseModel):
    """Base of every task's options; each task subclasses it with its own fields."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)
    type: str = "classification"


class StrategyOptions(BaseModel):
    """Base of every strategy's options; each strategy subclasses it with its own fields."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)
    name: str = "lora"


class AdversarialConfig(Section):
    """Adversarial training on the input embeddings (tunewise.training.adversarial)."""

    # freelb: chosen on SST-2's tuning half for full fine-tuning and (second round) LoRA, and the
    # only one that met the bar on the report half (full: -0.3 clean, +2.2 typos, +2.3 synonyms;
    # docs/techniques.md); it costs steps + 1 forward and backward passes per step, FGM 2.
    method: Literal["fgm", "pgd", "freelb"] = "freelb"
    # L2 radius of the perturbation, per example (tokens × hidden). minilm's token embeddings
    # have norm ~1.07, so 1.0 is ~26% of a 13-token sentence's and took LoRA on SST-2 to chance;
    # 0.2 is about the classic batch-normalised FGM's ε = 1 spread over a batch of 32.
    epsilon: float = Field(0.2, gt=0)
    alpha: float = Field(0.07, gt=0)  # step size of each PGD / FreeLB ascent step
    steps: int = Field(3, gt=0)  # ascent steps (PGD, FreeLB)


class TrainingConfig(Section):
    epochs: float = Field(3.0, gt=0)  # passes over the training data
    max_steps: int | None = Field(None, gt=0)  # overrides epochs when set
    batch_size: int = Field(32, gt=0)  # examples per step (unused with max_tokens_per_batch)
    # Token budget per batch (padded tokens): batches of short examples get more of them, which
    # keeps the matrix units fed. None: fixed-count batches of `batch_size`, grouped by length.
    max_tokens_per_batch: int | None = Field(None, gt=0)
    # How batches group examples of similar length: window (HF's group_by_length: random batches,
    # little padding), global (least padding, same-length batches), none (random, most padding);
    # auto: window with a token budget, else the task's choice (generation: window; others: none).
    length_grouping: Literal["auto", "window", "global", "none"] = "auto"
    gradient_accumulation_steps: int = Field(1, gt=0)  # batches summed per optimizer step
    learning_rate: float | None = Field(None, gt=0)  # None: the strategy's own default
    optimizer: Literal["adamw", "adam", "sgd", "sgd_momentum"] = "adamw"  # optimizer of what trains
    momentum: float = Field(0.9, ge=0, lt=1)  # for sgd_momentum
    # decoupled weight decay (AdamW); 0 as HF Trainer (0.01 with 6% warmup cost CoNLL NER ~2 F1)
    weight_decay: float = Field(0.0, ge=0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"  # after warmup
    warmup: float = Field(0.0, ge=0)  # < 1: fraction of all steps; >= 1: number of steps
    max_grad_norm: float = Field(1.0, gt=0)  # gradient clipping norm
    max_train_samples: int | None = Field(None, gt=0)  # random subset of train (seeded)
    max_eval_samples: int | None = Field(None, gt=0)  # random subset of validation/test (seeded)
    early_stopping_patience: int | None = Field(None, gt=0)  # evaluations without improvement
    logging_steps: int = Field(10, gt=0)  # optimizer steps between loss logs
    # Also checkpoint every N optimizer steps (on top of each epoch's), so a crash in a long
    # epoch loses at most N steps on `--resume`. None: per-epoch checkpoints only.
    save_steps: int | None = Field(None, gt=0)
    num_threads: int | None = Field(None, gt=0)  # torch CPU threads; None: torch's default
    # Causal-LM generation tasks: the examples of a batch share one row (positions restart per
    # example, attention stays inside it), so no padding is computed; same loss as unpacked.
    packing: bool = False
    # Causal-LM answer loss, what a step's summed token loss is divided by: "epoch", the epoch's
    # mean answer tokens per step (each token weighs the same whichever batch it lands in);
    # "step", the step's own count (transformers'; length-grouped batches then weigh a short
    # answer's tokens more than a long one's)
    loss_normalization: Literal["epoch", "step"] = "epoch"
    # Mixed precision through the Trainer's bf16/fp16 switches (autocast): bf16 also on CPU;
    # fp16 needs CUDA. See docs/scale.md.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory
    # dropout masks from 16-bit uniforms while training on CPU: same drop rate, ~4x cheaper masks
    # (12-18% of a BERT step with torch's); false: torch's own dropout, bit for bit
    fast_dropout: bool = True
    # gated (LLaMA-style) MLPs keep gate and up for backward and recompute act(gate)·up there:
    # two fewer (tokens × intermediate) tensors per block, one extra elementwise pass
    recompute_mlp: bool = True
    adversarial: AdversarialConfig | None = None  # None: plain training


class EvalConfig(Section):
    metric: str | None = None  # metric that picks the best checkpoint; None: the task's default
    batch_size: int = Field(64, gt=0)  # examples per forward pass when evaluating
    each_epoch: bool = True  # evaluate (and checkpoint) after every epoch


class DistillConfig(Section):
    """Knowledge distillation from an earlier run (tunewise.training.distill)."""

    teacher: str  # run directory of the teacher (any task-compatible tunewise run)
    alpha: float = Field(0.5, ge=0, le=1)  # weight of the task loss; 1 - alpha: the KD term
    temperature: float = Field(2.0, gt=0)
    # Student = the teacher's fine-tuned (merged) model keeping only these blocks (0-based);
    # None: the student is model.name (same tokenizer as the teacher).
    student_layers: list[int] | None = None
    cache_teacher: bool = False  # teacher logits computed once and cached on disk
    hidden_states: bool = False  # also match block outputs (layer-reduced students)
    # Unlabelled inputs (a file read like data.train, labels ignored) the student learns from
    # the teacher alone: more text for the KD term (classification only)
    transfer: str | None = None


class Config(Section):
    model: ModelConfig  # the base model
    task: SerializeAsAny[TaskOptions] = Field(
        default_factory=lambda: TaskOptions(type="classification")
    )
    data: DataConfig | None = None  # required, except in a multi-task config (`tasks:`)
    strategy: SerializeAsAny[StrategyOptions] = Field(
        default_factory=lambda: StrategyOptions(name="lora")
    )
    training: TrainingConfig = Field(default_factory=TrainingConfig)  # epochs, batches, optimizer
    eval: EvalConfig = Field(default_factory=EvalConfig)  # evaluation and best-checkpoint choice
    output_dir: str = "runs/latest"  # run directory (refused when not empty, unless --overwrite)
    seed: int = 42  # seeds data subsets, splits, initialisation and batching
    # Start from this earlier run's trained model instead of the base model (continue its
    # tensors, or its merged weights; see tunewise.training.init_from and docs/lifecycle.md).
    init_from: str | None = None
    # experiment tracking (tunewise.tracking.options) and `tunewise tune` (tunewise.tune.options)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    tune: TuneConfig | None = None
    distill: DistillConfig | None = None  # None: no teacher

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        """`strategy: lora` and `task: classification` are short for {name: ...} / {type: ...}."""
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("strategy"), str):
                data["strategy"] = {"name": data["strategy"]}
            if isinstance(data.get("task"), str):
                data["task"] = {"type": data["task"]}
            if "tasks" in data:  # multi-task: `tasks` + `multitask` are one composite task
                if "task" in data or "data" in data:
                    raise ValueError("give either 'tasks' (multi-task) or 'task' and 'data'")
                tasks, options = data.pop("tasks"), data.pop("multitask", None) or {}
                data["task"] = {**options, "type": "multitask", "tasks": tasks}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.data is None and self.task.type != "multitask":
            raise ValueError("missing required key 'data' (the training files)")
        if self.training.early_stopping_patience and not self.eval.each_epoch:
            raise ValueError("training.early_stopping_patience needs eval.each_epoch: true")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------------------- loading


def load_config(
    source: str | Path | dict[str, Any] | Config, overrides: list[str] | None = None
) -> Config:
    """Read a YAML file (or dict), apply `a.b=value` overrides, validate everything."""
    if isinstance(source, Config):
        if not overrides:
            return source
        source = source.to_dict()
    where = "config"
    if isinstance(source, (str, Path)):
        where = str(source)
        raw = read_yaml(source)
    else:
        raw = copy.deepcopy(dict(source))
    for item in overrides or []:
        apply_override(raw, item)
    return validate_config(raw, where)


def validate_config(raw: dict[str, Any], where: str = "config") -> Config:
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where, Config)) from None
    from tunewise.registry import STRATEGIES, TASKS

    task_cls = TASKS.get(cfg.task.type)
    strategy_cls = STRATEGIES.get(cfg.strategy.name)
    cfg.task = _validate_section(task_cls.Options, cfg.task.model_dump(), "task", where)
    cfg.strategy = _validate_section(
        strategy_cls.Options, _own_strategy_options(cfg.strategy.model_dump()), "strategy", where
    )
    cfg.strategy = strategy_cls.resolve_options(cfg.strategy, task_cls)
    if cfg.training.packing:
        _check_packing(task_cls, strategy_cls, where)
    return cfg


def _check_packing(task_cls: type, strategy_cls: type, where: str) -> None:
    if not task_cls.supports_packing:
        raise ConfigError(
            f"Invalid config ({where}): 'training.packing' is for causal-LM generation tasks "
            f"(instruction, chat, generative_qa, summarization, translation), not "
            f"'{task_cls.name}'."
        )
    if not strategy_cls.supports_packing:
        raise ConfigError(
            f"Invalid config ({where}): 'training.packing' cannot be used with strategy "
            f"'{strategy_cls.name}': its virtual tokens would be shared by every example packed "
            "into a row. Use lora, ia3 or full, or turn packing off."
        )


def _own_strategy_options(options: dict[str, Any]) -> dict[str, Any]:
    """Drop options that belong to another strategy (e.g. `r` after `strategy.name=full`).

    One config can then be run with any strategy (overrides, sweeps); a key that no strategy
    knows still fails validation with a did-you-mean hint.
    """
    from tunewise.registry import STRATEGIES

    own = STRATEGIES.get(options["name"]).Options.model_fields
    others = {f for n in STRATEGIES.names() for f in STRATEGIES.get(n).Options.model_fields}
    dropped = [k for k in options if k not in own and k in others]
    if dropped:
        print(
            f"[tunewise] note: strategy option(s) {', '.join(dropped)} do not apply to "
            f"'{options['name']}' and are ignored."
        )
    return {k: v for k, v in options.items() if k not in dropped}


def _validate_section(model: type[BaseModel], data: dict, prefix: str, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where, model, prefix)) from None


def save_config(cfg: Config, path: Path) -> None:
    from tunewise.artifacts import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
