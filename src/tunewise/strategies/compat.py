"""The strategy × task compatibility matrix, computed from the registries.

Each strategy says from a task's traits whether it can train it (`Strategy.incompatible`), so
the matrix follows whatever tasks and strategies are registered; nothing here is a table.
`assemble` enforces it before any model is loaded; `tunewise strategies` prints it.
"""

from __future__ import annotations

from typing import Any

from tunewise.errors import ConfigError

# Registry entries that are not strategies of their own (resolved before assembly).
META_STRATEGIES = {"auto"}


def strategy_names() -> list[str]:
    from tunewise.registry import STRATEGIES

    return [n for n in STRATEGIES.names() if n not in META_STRATEGIES]


def compatible_strategies(task_cls: type) -> list[str]:
    from tunewise.registry import STRATEGIES

    return [n for n in strategy_names() if STRATEGIES.get(n).incompatible(task_cls) is None]


def check_compatible(strategy_cls: type, task_cls: type) -> None:
    """ConfigError naming the reason and the strategies that do fit, if `strategy_cls` cannot
    train `task_cls`."""
    reason = strategy_cls.incompatible(task_cls)
    if reason:
        raise ConfigError(
            f"Strategy '{strategy_cls.name}' cannot train task '{task_cls.name}': {reason}. "
            f"Strategies that can: {', '.join(compatible_strategies(task_cls))}."
        )


# -- training add-ons (issue 14): adversarial training, distillation, multi-task -------------------
ADDONS = ("adversarial", "distill", "multitask")


def addon_incompatible(addon: str, task_cls: type) -> str | None:
    """Why the add-on cannot train tasks of `task_cls` (None: it can), from the task's traits."""
    name = getattr(task_cls, "name", "")
    if addon == "adversarial" and name == "preference":
        return (
            "an embedding perturbation would also reach DPO's reference pass, and preference "
            "pairs differ in their answers, not their inputs"
        )
    if addon == "distill":
        from tunewise.training.distill import UNSUPPORTED

        return UNSUPPORTED.get(name)
    if addon == "multitask" and getattr(task_cls, "generative", False):
        return (
            "multi-task learning shares one encoder backbone between task heads; generative "
            "tasks train the whole language-model head of their own model"
        )
    return None


def active_addons(cfg: Any) -> list[str]:
    on = []
    if cfg.training.adversarial is not None:
        on.append("adversarial")
    if getattr(cfg, "distill", None) is not None:
        on.append("distill")
    return on


def check_addons(cfg: Any, task_cls: type) -> None:
    """ConfigError naming the reason, before any model loads, if an add-on the config turns on
    cannot train this task."""
    for addon in active_addons(cfg):
        reason = addon_incompatible(addon, task_cls)
        if reason:
            raise ConfigError(f"'{addon}' cannot train task '{task_cls.name}': {reason}.")


def matrix() -> dict[str, Any]:
    """{"tasks": [...], "strategies": [...], "matrix": {strategy: {task: {compatible, reason}}},
    "unavailable_tasks": {task: error}} for every registered task and strategy."""
    from tunewise.registry import STRATEGIES, TASKS

    tasks: dict[str, type] = {}
    unavailable: dict[str, str] = {}
    for name in TASKS.names():
        try:
            tasks[name] = TASKS.get(name)
        except Exception as exc:  # a task module that fails to import must not hide the rest
            unavailable[name] = f"{type(exc).__name__}: {exc}"
    table: dict[str, dict[str, dict[str, Any]]] = {}
    summaries = {}
    for s in strategy_names():
        cls = STRATEGIES.get(s)
        summaries[s] = cls.summary
        table[s] = {}
        for t, task_cls in tasks.items():
            reason = cls.incompatible(task_cls)
            table[s][t] = {"compatible": reason is None, "reason": reason}
    addons = {
        a: {
            t: {"compatible": (r := addon_incompatible(a, c)) is None, "reason": r}
            for t, c in tasks.items()
        }
        for a in ADDONS
    }
    out: dict[str, Any] = {
        "tasks": list(tasks),
        "strategies": strategy_names(),
        "summaries": summaries,
        "matrix": table,
        "addons": addons,
    }
    if unavailable:
        out["unavailable_tasks"] = unavailable
    return out


def render(data: dict[str, Any]) -> str:
    """The matrix as a text table (✓ / ✗ with numbered reasons below)."""
    tasks, rows = data["tasks"], data["strategies"]
    width = max(len(s) for s in rows) + 2
    cols = [max(len(t), 3) + 2 for t in tasks]
    lines = [" " * width + "".join(t.ljust(c) for t, c in zip(tasks, cols, strict=True))]
    reasons: list[str] = []
    for s in rows:
        cells = []
        for t, c in zip(tasks, cols, strict=True):
            entry = data["matrix"][s][t]
            if entry["compatible"]:
                cells.append("ok".ljust(c))
            else:
                if entry["reason"] not in reasons:
                    reasons.append(entry["reason"])
                cells.append(f"no[{reasons.index(entry['reason']) + 1}]".ljust(c))
        lines.append(s.ljust(width) + "".join(cells))
    for addon, row in data.get("addons", {}).items():
        cells = []
        for t, c in zip(tasks, cols, strict=True):
            entry = row[t]
            if entry["compatible"]:
                cells.append("ok".ljust(c))
            else:
                if entry["reason"] not in reasons:
                    reasons.append(entry["reason"])
                cells.append(f"no[{reasons.index(entry['reason']) + 1}]".ljust(c))
        lines.append(f"+{addon}"[: width - 1].ljust(width) + "".join(cells))
    lines.append("")
    lines += [f"[{i}] {r}" for i, r in enumerate(reasons, 1)]
    lines.append("")
    lines += [f"{s:<{width}}{data['summaries'][s]}" for s in rows]
    for t, err in data.get("unavailable_tasks", {}).items():
        lines.append(f"(task '{t}' could not be loaded: {err})")
    return "\n".join(lines).rstrip() + "\n"
