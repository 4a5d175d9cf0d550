"""`tunewise train`, `quickstart` and `sweep`: training runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunewise.cli._app import fail
from tunewise.errors import TunewiseError


def train(
    config: Annotated[Path, typer.Argument(help="YAML config file.")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key.path=value overrides, e.g. training.epochs=2")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output_dir.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
) -> None:
    """Fine-tune as CONFIG says; writes a run directory (model, manifest, metrics, report)."""
    from tunewise import api

    try:
        result = api.finetune(config, overrides or [], overwrite=overwrite, resume=resume)
    except TunewiseError as exc:
        fail(exc)
    typer.echo(f"run saved to {result.run_dir} (report: {result.run_dir / 'report.md'})")


def quickstart(
    output_dir: Annotated[Path, typer.Option(help="Where the demo run goes.")] = Path(
        "runs/quickstart"
    ),
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier demo run.")] = False,
) -> None:
    """Fine-tune minilm with LoRA on the bundled support-message set, evaluate, predict."""
    import yaml

    from tunewise import api
    from tunewise.quickstart import CONFIG, DATA, SAMPLES

    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    raw["data"] = {"train": str(DATA / "train.jsonl"), "validation": str(DATA / "validation.jsonl")}
    raw["output_dir"] = str(output_dir)
    try:
        result = api.finetune(raw, overwrite=overwrite)
        predictions = result.load().predict(SAMPLES)
    except TunewiseError as exc:
        fail(exc)
    m = result.metrics["validation"]
    typer.echo("")
    typer.secho("validation metrics", bold=True)
    for key in ("accuracy", "macro_f1", "micro_f1", "n_examples"):
        typer.echo(
            f"  {key:<10} {m[key]:.4f}" if isinstance(m[key], float) else f"  {key:<10} {m[key]}"
        )
    typer.secho("predictions", bold=True)
    for text, pred in zip(SAMPLES, predictions, strict=True):
        typer.echo(f"  {pred['label']:<10} {pred['score']:.2f}  {text}")
    typer.echo(f"\nreport: {result.run_dir / 'report.md'}")


def sweep(
    config: Annotated[Path, typer.Argument(help="YAML config file (the strategy is replaced).")],
    strategies: Annotated[str, typer.Option(help="Comma-separated, e.g. full,lora,bitfit.")],
    output_dir: Annotated[Path, typer.Option(help="Where entries and the report go.")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key.path=value overrides, e.g. training.epochs=2")
    ] = None,
) -> None:
    """Train CONFIG once per strategy (resumable) and compare: sweep.json, sweep.md, plots."""
    from tunewise import api

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    try:
        rows = api.sweep(config, names, output_dir, overrides or [])
    except TunewiseError as exc:
        fail(exc)
    failed = [r["strategy"] for r in rows if r["status"] != "ok"]
    typer.echo(
        f"sweep report: {output_dir / 'sweep.md'}" + (f" (failed: {failed})" if failed else "")
    )
