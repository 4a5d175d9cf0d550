"""The `data.prepare` section: which preparation steps run, and their knobs.

A config module beside `config.py` (whose `DataConfig.prepare` is a `PrepareConfig`): the data
pipeline (`tunewise.data`) reads these options and the config never imports the pipeline. Every
section forbids unknown keys, like the rest of the config.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Order matters: emoji before control, so zero-width joiners inside emoji sequences (👨‍👩‍👧)
# go with their emoji instead of splitting it into three.
CLEAN_STEPS = ("html", "unicode", "emoji", "control", "mask", "whitespace")
MASKS = ("url", "email", "phone")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CleanOptions(_Section):
    """Text cleaning; steps run in the order listed here and each one can be switched off."""

    html: bool = False  # strip HTML tags, unescape entities (&amp; → &)
    unicode: bool = False  # repair mojibake with ftfy, then NFKC normalisation
    emoji: Literal["keep", "remove", "name"] = "keep"  # name: 👍 → " :thumbs_up: "
    control: bool = False  # drop control characters and zero-width characters (ZWJ, ZWSP, BOM)
    mask: list[Literal["url", "email", "phone"]] = Field(default_factory=list)  # → <URL> ...
    whitespace: bool = False  # collapse runs of whitespace, strip the ends

    @classmethod
    def all(cls) -> CleanOptions:
        return cls(
            html=True, unicode=True, control=True, emoji="name", mask=list(MASKS), whitespace=True
        )

    def enabled(self) -> list[str]:
        on = {
            "html": self.html,
            "unicode": self.unicode,
            "control": self.control,
            "emoji": self.emoji != "keep",
            "mask": bool(self.mask),
            "whitespace": self.whitespace,
        }
        return [s for s in CLEAN_STEPS if on[s]]


class DedupOptions(_Section):
    exact: bool = True  # same text after NFKC, case folding and whitespace collapsing
    near: bool = False  # MinHash LSH near-duplicates (datasketch)
    threshold: float = Field(0.8, gt=0, le=1)  # Jaccard similarity of word n-gram sets
    num_perm: int = Field(128, ge=16, le=1024)  # MinHash permutations (precision vs speed)
    ngram: int = Field(3, ge=1, le=10)  # words per shingle; shorter texts are one shingle
    remove: bool = True  # false: keep duplicates, only keep each group inside one split
    conflicts: Literal["keep_first", "drop"] = "keep_first"  # same text, different labels


class FilterOptions(_Section):
    min_chars: int | None = Field(None, ge=0)  # drop records with fewer characters
    max_chars: int | None = Field(None, gt=0)  # drop records with more characters
    min_tokens: int | None = Field(None, ge=0)  # drop records with fewer tokens (filter.tokenizer)
    max_tokens: int | None = Field(None, gt=0)  # drop records with more tokens (filter.tokenizer)
    # Tokenizer (hub id, local dir or alias) that counts tokens; None: whitespace-separated words.
    tokenizer: str | None = None
    languages: list[str] | None = None  # ISO 639-1 codes to keep (py3langid); None: no filter


class AugmentOptions(_Section):
    """Label-preserving augmentation of the training split (seeded)."""

    # EDA operations (Wei & Zou 2019): one is picked at random for each new example.
    eda: list[Literal["synonym", "insert", "swap", "delete"]] = Field(default_factory=list)
    alpha: float = Field(0.1, gt=0, le=0.5)  # fraction of words an EDA operation touches
    fill_mask_model: str | None = None  # masked-LM substitution with this fill-mask model
    # Back-translation: [model source→pivot, model pivot→source] (e.g. two Marian models).
    back_translation: list[str] | None = Field(None, min_length=2, max_length=2)
    # New examples per original: 1.0 adds none, 2.0 doubles, 1.5 adds one to half of them;
    # a dict sets it per class; "balance" brings every class up to the largest one.
    multiplier: float | dict[str, float] | Literal["balance"] = 2.0
    wordnet_dir: str | None = None  # None: $TUNEWISE_WORDNET or Debian's /usr/share/wordnet

    def operations(self) -> list[str]:
        ops = list(self.eda)
        if self.fill_mask_model:
            ops.append("fill_mask")
        if self.back_translation:
            ops.append("back_translation")
        return ops


class PrepareConfig(_Section):
    """Everything `tunewise data prepare` and `data.prepare` in a run config do."""

    # canonical field → column in the file, e.g. {text: sentence}; other columns are kept as is
    columns: dict[str, str] = Field(default_factory=dict)
    on_error: Literal["fail", "skip"] = "fail"  # skip: bad records go to rejected.jsonl
    labels: list[str] | None = None  # allowed labels; None: any label is accepted
    clean: CleanOptions = Field(default_factory=CleanOptions)  # text cleaning steps
    dedup: DedupOptions = Field(default_factory=DedupOptions)  # exact and near-duplicate removal
    filter: FilterOptions = Field(default_factory=FilterOptions)  # length and language filters
    augment: AugmentOptions | None = None  # training-split augmentation (classification); None: off
    # train/validation(/test) ratios used when only one file is given; they must sum to 1
    split: list[float] = Field(default_factory=lambda: [0.8, 0.1, 0.1], min_length=2, max_length=3)
    stratify: bool = True  # keep label proportions in every split (classification)
    leakage: Literal["warn", "drop", "fail"] = "drop"  # eval texts (or near-dups) also in train
    seed: int | None = None  # None: the run's seed (42 on the command line)
    num_proc: int | None = Field(None, gt=0)  # worker processes for `datasets.map`; None: auto

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        """`clean: all` / `clean: [html, whitespace]`; `split: "0.8,0.1,0.1"`."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        clean = data.get("clean")
        if clean == "all":
            data["clean"] = CleanOptions.all().model_dump()
        elif isinstance(clean, (str, list)):
            steps = [clean] if isinstance(clean, str) else clean
            data["clean"] = _clean_from_steps(steps)
        if isinstance(data.get("split"), str):
            data["split"] = [float(x) for x in data["split"].split(",") if x.strip()]
        return data

    @model_validator(mode="after")
    def _ratios(self) -> PrepareConfig:
        if any(r <= 0 for r in self.split) or abs(sum(self.split) - 1) > 1e-6:
            raise ValueError(f"split ratios must be positive and sum to 1, got {self.split}")
        return self


def _clean_from_steps(steps: list[Any]) -> dict[str, Any] | list[Any]:
    if not all(isinstance(s, str) for s in steps):
        return steps  # let pydantic report the bad value
    out: dict[str, Any] = {}
    for step in steps:
        if step == "all":
            return CleanOptions.all().model_dump()
        if step == "emoji":
            out["emoji"] = "name"
        elif step == "mask":
            out["mask"] = list(MASKS)
        elif step in MASKS:
            out.setdefault("mask", []).append(step)
        else:
            out[step] = True  # an unknown step name fails as an unknown key
    return out
