"""Config loading and validation: defaults, key-path errors with hints, overrides, YAML files."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from tunewise.config import Config, DataConfig, load_config, save_config, validate_config
from tunewise.errors import ConfigError, TunewiseError


def minimal(**sections) -> dict:
    raw = {"model": {"name": "some-model"}, "data": {"train": "train.jsonl"}}
    raw.update(sections)
    return raw


def config_error(raw: dict, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(raw, overrides)
    return str(info.value)


# ------------------------------------------------------------------------------ valid configs


def test_minimal_config_validates_and_fills_defaults():
    from tunewise.strategies.lora import LoraOptions
    from tunewise.tasks.classification import ClassificationOptions

    cfg = validate_config(minimal())
    assert isinstance(cfg, Config)
    assert cfg.model.name == "some-model"
    assert cfg.model.max_length == 128
    assert cfg.model.pooling == "auto"
    assert cfg.data.train == "train.jsonl"
    assert cfg.data.validation is None
    assert cfg.data.text_column == "text"
    assert cfg.data.label_column == "label"
    assert cfg.data.format == "auto"
    assert cfg.training.epochs == 3.0
    assert cfg.training.batch_size == 32
    assert cfg.training.learning_rate is None
    assert cfg.eval.batch_size == 64
    assert cfg.output_dir == "runs/latest"
    assert cfg.seed == 42
    # task and strategy sections are re-validated by the registered implementation's options
    assert isinstance(cfg.task, ClassificationOptions)
    assert cfg.task.type == "classification"
    assert cfg.task.threshold == 0.5
    assert isinstance(cfg.strategy, LoraOptions)
    assert (cfg.strategy.name, cfg.strategy.r, cfg.strategy.alpha) == ("lora", 8, 16)


def test_strategy_section_gets_its_own_option_defaults():
    from tunewise.strategies.full import FullOptions

    cfg = load_config(minimal(strategy={"name": "full"}))
    assert isinstance(cfg.strategy, FullOptions)
    assert "r" not in cfg.to_dict()["strategy"]
    lora = load_config(minimal(strategy={"name": "lora", "r": 4, "target_modules": ["query"]}))
    assert lora.strategy.r == 4
    assert lora.strategy.target_modules == ["query"]
    assert lora.to_dict()["strategy"]["r"] == 4  # options survive serialisation


def test_config_instance_passes_through_and_accepts_overrides():
    cfg = load_config(minimal())
    assert load_config(cfg) is cfg
    changed = load_config(cfg, ["training.epochs=5"])
    assert changed.training.epochs == 5.0
    assert cfg.training.epochs == 3.0


def test_saved_config_loads_back_identically(tmp_path):
    cfg = load_config(
        minimal(
            strategy={"name": "lora", "r": 4},
            data={"train": {"path": "t.csv", "text_column": ["a", "b"]}, "label_map": {0: "x"}},
            training={"epochs": 1.5, "max_tokens_per_batch": 512},
        )
    )
    path = tmp_path / "config.yaml"
    save_config(cfg, path)
    again = load_config(path)
    assert again.to_dict() == cfg.to_dict()
    assert again.strategy.r == 4


# ------------------------------------------------------------------------- unknown keys, hints


def test_unknown_top_level_key_has_path_and_hint():
    msg = config_error(minimal(trainig={"epochs": 2}))
    assert "unknown key 'trainig'" in msg
    assert "did you mean 'training'" in msg


def test_unknown_nested_key_has_path_and_hint():
    msg = config_error(minimal(training={"epoch": 2}))
    assert "'training.epoch'" in msg
    assert "did you mean 'epochs'" in msg


@pytest.mark.parametrize(
    ("raw", "path", "hint"),
    [
        (minimal(model={"name": "m", "max_lenght": 64}), "model.max_lenght", "max_length"),
        (minimal(data={"train": "t", "text_colum": "x"}), "data.text_colum", "text_column"),
        (
            minimal(data={"train": {"path": "t", "label_colum": "y"}}),
            "data.train.label_colum",
            "label_column",
        ),
        (minimal(eval={"metrc": "accuracy"}), "eval.metrc", "metric"),
        (minimal(task={"type": "classification", "treshold": 0.3}), "task.treshold", "threshold"),
    ],
)
def test_unknown_key_in_each_section(raw, path, hint):
    msg = config_error(raw)
    assert f"unknown key '{path}'" in msg
    assert f"did you mean '{hint}'" in msg


def test_unknown_key_without_close_match_has_no_hint():
    msg = config_error(minimal(training={"zzzz": 1}))
    assert "unknown key 'training.zzzz'" in msg
    assert "did you mean" not in msg


def test_errors_are_tunewise_errors_with_exit_code_2():
    with pytest.raises(TunewiseError) as info:
        load_config(minimal(training={"epoch": 2}))
    assert info.value.exit_code == 2


# ------------------------------------------------------------------------------- bad values


def test_wrong_type_names_path_and_value():
    msg = config_error(minimal(training={"epochs": "many"}))
    assert "'training.epochs'" in msg
    assert "'many'" in msg


@pytest.mark.parametrize(
    ("raw", "path", "value"),
    [
        (minimal(model={"name": "m", "max_length": 0}), "model.max_length", "0"),
        (minimal(model={"name": "m", "pooling": "max"}), "model.pooling", "'max'"),
        (minimal(training={"batch_size": -4}), "training.batch_size", "-4"),
        (minimal(training={"optimizer": "adamax"}), "training.optimizer", "'adamax'"),
        (
            minimal(data={"train": "t", "validation_fraction": 1.5}),
            "data.validation_fraction",
            "1.5",
        ),
        (minimal(seed="abc"), "seed", "'abc'"),
    ],
)
def test_bad_values_name_path_and_value(raw, path, value):
    msg = config_error(raw)
    assert f"'{path}'" in msg
    assert f"(got {value})" in msg


def test_missing_required_keys_are_named():
    assert "missing required key 'model'" in config_error({"data": {"train": "t"}})
    assert "missing required key 'data.train'" in config_error({"model": {"name": "m"}, "data": {}})
    assert "missing required key 'model.name'" in config_error(minimal(model={}))


def test_unknown_strategy_name_suggests_the_closest():
    msg = config_error(minimal(strategy={"name": "lorra"}))
    assert "lorra" in msg
    assert "did you mean 'lora'" in msg


def test_unknown_task_type_suggests_the_closest():
    msg = config_error(minimal(task={"type": "clasification"}))
    assert "did you mean 'classification'" in msg


def test_unknown_lora_option_names_strategy_path():
    msg = config_error(minimal(strategy={"name": "lora", "rank": 8}))
    assert "unknown key 'strategy.rank'" in msg


def test_option_of_another_strategy_is_dropped_with_a_note(capsys):
    # `strategy.name=full` on a LoRA config: `r` belongs to lora, so it is ignored (and said so)
    cfg = load_config(minimal(strategy={"name": "full", "r": 8}))
    assert cfg.strategy.name == "full"
    assert "r" not in cfg.to_dict()["strategy"]
    out = capsys.readouterr()
    note = out.out + out.err
    assert re.search(r"\br\b", note)  # names the dropped option
    assert "'full'" in note
    assert "ignored" in note


def test_option_no_strategy_knows_names_the_path():
    msg = config_error(minimal(strategy={"name": "full", "rank": 8}))
    assert "unknown key 'strategy.rank'" in msg


def test_lora_option_typo_gets_hint():
    msg = config_error(minimal(strategy={"name": "lora", "alpah": 8}))
    assert "unknown key 'strategy.alpah'" in msg
    assert "did you mean 'alpha'" in msg


def test_strategy_option_bad_value_names_path_and_value():
    msg = config_error(minimal(strategy={"name": "lora", "r": "big"}))
    assert "'strategy.r'" in msg
    assert "'big'" in msg


def test_strategy_section_errors_keep_the_strategy_prefix():
    # Errors found while validating the `strategy` section itself (before the registry step)
    # must name their full path like every other section does.
    assert "'strategy.name'" in config_error(minimal(strategy={"name": 5}))
    assert "'strategy.r'" in config_error(minimal(strategy={"r": "big"}))


def test_strategy_and_task_shorthands():
    # A section without a name is the default strategy (lora); a bare name is a section.
    assert validate_config(minimal(strategy={"r": 4})).strategy.r == 4
    cfg = validate_config(minimal(strategy="bitfit", task="classification"))
    assert cfg.strategy.name == "bitfit"
    assert cfg.task.type == "classification"


# -------------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("override", "attr", "expected"),
    [
        ("training.epochs=2", ("training", "epochs"), 2.0),
        ("training.batch_size=16", ("training", "batch_size"), 16),
        ("training.learning_rate=1e-4", ("training", "learning_rate"), 1e-4),
        ("training.learning_rate=0.0003", ("training", "learning_rate"), 3e-4),
        ("data.text_column=[sentence, content]", ("data", "text_column"), ["sentence", "content"]),
        ("training.max_steps=null", ("training", "max_steps"), None),
        ("model.trust_remote_code=true", ("model", "trust_remote_code"), True),
        ("seed=7", ("seed",), 7),
        ("output_dir=runs/a=b", ("output_dir",), "runs/a=b"),  # only the first '=' splits
        ("model.name=[unclosed", ("model", "name"), "[unclosed"),  # not YAML: kept as text
    ],
)
def test_override_values_are_parsed_as_yaml(override, attr, expected):
    raw = minimal(training={"max_steps": 100, "learning_rate": 0.1})
    value = load_config(raw, [override])
    for part in attr:
        value = getattr(value, part)
    assert value == expected
    assert type(value) is type(expected)


def test_override_keeps_sibling_keys_and_later_wins():
    raw = minimal(training={"batch_size": 8, "epochs": 1})
    cfg = load_config(raw, ["training.epochs=4", "training.epochs=5", "model.max_length=64"])
    assert cfg.training.epochs == 5.0
    assert cfg.training.batch_size == 8
    assert cfg.model.name == "some-model"
    assert cfg.model.max_length == 64


def test_override_creates_missing_sections_and_strategy_options():
    cfg = load_config(minimal(), ["strategy.name=lora", "strategy.r=16", "eval.each_epoch=false"])
    assert cfg.strategy.r == 16
    assert cfg.eval.each_epoch is False


def test_override_inside_a_split_given_as_a_path():
    cfg = load_config(minimal(), ["data.train.text_column=sentence"])
    spec = cfg.data.split("train")
    assert spec.path == "train.jsonl"
    assert spec.text_column == "sentence"


def test_override_does_not_modify_the_callers_dict():
    raw = minimal(training={"epochs": 1})
    before = copy.deepcopy(raw)
    cfg = load_config(raw, ["training.epochs=9", "model.max_length=64"])
    assert cfg.training.epochs == 9.0
    assert raw == before  # a dict passed in is the caller's; overrides must not leak into it


def test_override_values_are_validated_with_their_path():
    msg = config_error(minimal(), ["training.epochs=-1"])
    assert "'training.epochs'" in msg
    assert "(got -1)" in msg
    assert "'training.epoch'" in config_error(minimal(), ["training.epoch=2"])


@pytest.mark.parametrize("override", ["training.epochs", "=3", "  =x", ""])
def test_malformed_override_is_a_config_error(override):
    msg = config_error(minimal(), [override])
    assert f"'{override}'" in msg
    assert "key.path=value" in msg


def test_override_through_a_scalar_is_a_config_error():
    msg = config_error(minimal(), ["model.name.revision=main"])
    assert "model.name.revision=main" in msg
    assert "'name'" in msg


def test_overrides_apply_to_yaml_files(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(minimal(training={"epochs": 1})), encoding="utf-8")
    cfg = load_config(path, ["training.epochs=2"])
    assert cfg.training.epochs == 2.0
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["training"]["epochs"] == 1


# ------------------------------------------------------------------------------ YAML files


def test_yaml_file_loads(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "model: {name: tiny}\ndata:\n  train: t.jsonl\n  label_map: {0: negative, 1: positive}\n",
        encoding="utf-8",
    )
    cfg = load_config(str(path))
    assert cfg.model.name == "tiny"
    assert cfg.data.label_map == {0: "negative", 1: "positive"}


def test_missing_yaml_file_names_it(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml") as info:
        load_config(path)
    assert "does not exist" in str(info.value)


def test_empty_yaml_file_names_it(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"empty\.yaml") as info:
        load_config(path)
    assert "is empty" in str(info.value)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model: [tiny\ndata: {train: t.jsonl}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml") as info:
        load_config(path)
    assert "not valid YAML" in str(info.value)


def test_yaml_that_is_not_a_mapping_names_the_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- data\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"list\.yaml") as info:
        load_config(path)
    assert "mapping" in str(info.value)


def test_validation_error_from_a_file_names_the_file(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(minimal(training={"epoch": 2})), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "'training.epoch'" in str(info.value)


# ------------------------------------------------------------------------------- data section


def test_label_map_accepts_int_and_string_keys():
    cfg = load_config(minimal(data={"train": "t", "label_map": {0: "neg", "1": "pos"}}))
    assert cfg.data.label_map == {0: "neg", "1": "pos"}
    assert 0 in cfg.data.label_map  # int keys stay ints (YAML `0: negative`)


def test_label_map_values_must_be_names():
    msg = config_error(minimal(data={"train": "t", "label_map": {0: ["a"]}}))
    assert "data.label_map" in msg


def test_split_merges_per_file_overrides_with_data_defaults():
    data = DataConfig(
        train={"path": "train.tsv", "text_column": "sentence"},
        validation="dev.jsonl",
        test={"path": "test.csv", "label_column": "gold", "format": "csv"},
        format="tsv",
        text_column=["text", "content"],
        text_pair_column="question",
        label_column="y",
    )
    train = data.split("train")
    assert train.path == "train.tsv"
    assert train.text_column == "sentence"  # per-file
    assert train.label_column == "y"  # data-level default
    assert train.text_pair_column == "question"
    assert train.format == "tsv"

    validation = data.split("validation")
    assert validation.path == "dev.jsonl"
    assert validation.text_column == ["text", "content"]
    assert validation.label_column == "y"
    assert validation.format == "tsv"

    test = data.split("test")
    assert test.label_column == "gold"
    assert test.format == "csv"
    assert test.text_column == ["text", "content"]


def test_split_of_an_absent_file_is_none():
    data = DataConfig(train="train.jsonl")
    assert data.split("validation") is None
    assert data.split("test") is None
