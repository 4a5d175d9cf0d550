"""The drift report's verdict (which signals cross their thresholds) and its markdown."""

from __future__ import annotations

from typing import Any


def recommend(report: dict[str, Any], limits: dict[str, float]) -> None:
    findings, triggered = [], []
    n = report["n_requests"]
    if n < limits["min_requests"]:
        findings.append(
            f"only {n} logged requests (< {limits['min_requests']:g}): too few to judge"
        )
    length = report.get("length")
    if length:
        hit = length["psi"] > limits["length_psi"]
        findings.append(
            f"input length: PSI {length['psi']:.3f} (threshold {limits['length_psi']}), mean "
            f"{length['train']['mean']} tokens in training vs {length['traffic']['mean']} served"
        )
        triggered += ["length"] if hit else []
    oov = report["oov"]["unseen_word_rate"]
    rise = oov["traffic"] - oov["reference"]
    findings.append(
        f"unseen words: {oov['traffic']:.1%} of served words vs {oov['reference']:.1%} on "
        f"held-out data (+{rise:.1%}; threshold +{limits['oov_increase']:.1%})"
    )
    triggered += ["oov"] if rise > limits["oov_increase"] else []
    labels = report.get("labels")
    if labels and labels["vs_reference_predictions"]:
        shift = labels["vs_reference_predictions"]
        findings.append(
            f"predicted labels: PSI {shift['psi']:.3f} against the model's predictions on "
            f"held-out data (threshold {limits['label_psi']}), TV {shift['total_variation']:.3f}"
        )
        triggered += ["labels"] if shift["psi"] > limits["label_psi"] else []
    conf = report.get("confidence")
    if conf and conf["reference_mean"] is not None:
        drop = conf["reference_mean"] - conf["traffic_mean"]
        findings.append(
            f"confidence: mean {conf['traffic_mean']:.3f} served vs {conf['reference_mean']:.3f} "
            f"held-out (drop {drop:+.3f}; threshold {limits['confidence_drop']})"
        )
        triggered += ["confidence"] if drop > limits["confidence_drop"] else []
    enough = n >= limits["min_requests"]
    report["drifted"] = sorted(triggered)
    report["retrain"] = bool(triggered) and enough
    report["findings"] = findings
    if not enough:
        report["recommendation"] = "no decision: too little traffic; collect more requests"
    elif triggered:
        report["recommendation"] = (
            f"retrain: drift in {', '.join(sorted(triggered))} (collect feedback with "
            "`tunewise data collect`, then `tunewise retrain`)"
        )
    else:
        report["recommendation"] = "no retrain: served traffic matches the training data"


def render(report: dict[str, Any]) -> str:
    lines = [
        "# Drift report",
        "",
        f"- run: `{report['run']}`, task {report['task']}",
        f"- requests: `{report['requests']}` ({report['n_requests']} logged); training "
        f"examples: {report['n_train']}; held-out reference: {report['n_reference']}",
        "",
        *[f"- {f}" for f in report["findings"]],
        "",
        f"**Recommendation: {report['recommendation']}.**",
        "",
        "Thresholds: " + ", ".join(f"{k} {v:g}" for k, v in report["thresholds"].items()),
        "",
    ]
    return "\n".join(lines)
