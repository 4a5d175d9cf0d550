"""The ready accelerate configs under configs/distributed/ load exactly as `accelerate launch
--config_file` loads them (its own parser and validation), and set what their names promise;
the FSDP one builds accelerate's FSDP plugin from the launcher's environment. DeepSpeed itself
is not needed (nor installed) for this."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).parent.parent / "configs" / "distributed"


def launch_args(name: str):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    parser = launch_command_parser()
    argv = ["--config_file", str(CONFIGS / name), "-m", "tunewise.cli", "train", "cfg.yaml"]
    # what `accelerate launch` does before choosing its launcher
    args, defaults, _ = _validate_launch_command(parser.parse_args(argv))
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
    return args


def test_fsdp_config_builds_the_fsdp_plugin(monkeypatch):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_args("fsdp.yaml")
    assert args.use_fsdp and not args.use_deepspeed and args.num_processes == 8
    env = prepare_multi_gpu_env(args)
    for key, value in env.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"  # rank 0 can save whole tensors
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_configs_set_their_zero_stage(stage):
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args = launch_args(f"deepspeed_zero{stage}.yaml")
    assert args.use_deepspeed and not args.use_fsdp
    assert int(args.zero_stage) == stage and args.mixed_precision == "bf16"
    _, env = prepare_deepspeed_cmd_env(args)
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
    assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == str(stage)
    if stage == 3:
        assert env["ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL"] == "true"


def test_ddp_multi_gpu_config():
    args = launch_args("ddp_multi_gpu.yaml")
    assert args.multi_gpu and not (args.use_fsdp or args.use_deepspeed)
    assert args.num_processes == 8
