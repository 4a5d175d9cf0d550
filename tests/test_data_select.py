"""Active learning picks the planted most-uncertain examples; Label Studio export/import."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import NEGATIVE, POSITIVE, toy_config, write_jsonl
from tunewise.cli import app
from tunewise.data.select import from_label_studio, to_label_studio, uncertainty
from tunewise.errors import DataError

# Texts seen in training with both labels equally often: the best a model can say is 50/50.
AMBIGUOUS = ["the actor story", "a plot it is", "this movie was quite"]


@pytest.fixture(scope="module")
def uncertain_run(tiny_bert, tmp_path_factory):
    from tunewise import api

    tmp = tmp_path_factory.mktemp("al")
    rng = random.Random(1)
    clear = [
        {
            "text": " ".join(rng.sample(POSITIVE if i % 2 == 0 else NEGATIVE, 3)),
            "label": "pn"[i % 2],
        }
        for i in range(64)
    ]
    ambiguous = [{"text": t, "label": label} for t in AMBIGUOUS for label in "pnpnpnpn"]
    data = {
        "train": write_jsonl(tmp / "train.jsonl", clear + ambiguous),
        "validation": write_jsonl(tmp / "dev.jsonl", clear[:16]),
    }
    cfg = toy_config(tiny_bert, data, tmp / "run", strategy="full", eval={"each_epoch": False})
    cfg["training"].update(epochs=10, learning_rate=5e-3)
    return api.finetune(cfg).run_dir


def _pool(tmp_path):
    rng = random.Random(0)
    texts = [" ".join(rng.sample(POSITIVE if i % 2 else NEGATIVE, 3)) for i in range(24)]
    texts[5:5] = AMBIGUOUS[:1]
    texts[15:15] = AMBIGUOUS[1:2]
    texts.append(AMBIGUOUS[2])
    return write_jsonl(tmp_path / "pool.jsonl", [{"text": t, "id": i} for i, t in enumerate(texts)])


@pytest.mark.parametrize("method", ["entropy", "margin", "least_confidence"])
def test_select_picks_the_planted_uncertain_examples(uncertain_run, tmp_path, method):
    out = tmp_path / "pick.jsonl"
    args = ["data", "select", "--run", str(uncertain_run), "--pool", str(_pool(tmp_path))]
    result = CliRunner().invoke(app, [*args, "--k", "3", "--method", method, "--output", str(out)])
    assert result.exit_code == 0, result.output
    picked = [json.loads(x) for x in out.read_text().splitlines()]
    assert {p["text"] for p in picked} == set(AMBIGUOUS)
    assert [p["uncertainty"] for p in picked] == sorted(
        (p["uncertainty"] for p in picked), reverse=True
    )
    assert {"id", "line", "predicted", "scores"} <= set(picked[0])


def test_random_selection_is_seeded(uncertain_run, tmp_path):
    from tunewise import api

    pool = _pool(tmp_path)
    one = api.select_for_annotation(uncertain_run, pool, 5, "random", seed=1)
    two = api.select_for_annotation(uncertain_run, pool, 5, "random", seed=1)
    other = api.select_for_annotation(uncertain_run, pool, 5, "random", seed=2)
    assert [r["id"] for r in one] == [r["id"] for r in two] != [r["id"] for r in other]


def test_uncertainty_measures_on_known_probabilities():
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4]])
    assert np.allclose(uncertainty(p, "entropy"), [np.log(2), 0.325083, 0.673012], atol=1e-5)
    assert np.allclose(uncertainty(p, "margin"), [1.0, 0.2, 0.8])
    assert np.allclose(uncertainty(p, "least_confidence"), [0.5, 0.1, 0.4])
    multi = uncertainty(np.array([[0.5, 0.99], [0.9, 0.9]]), "least_confidence", multi_label=True)
    assert np.allclose(multi, [(0.5 + 0.01) / 2, 0.1])
    with pytest.raises(DataError, match="Unknown selection method"):
        uncertainty(p, "variance")


def test_label_studio_round_trip(tmp_path):
    picked = [
        {"text": "fine film", "id": 1, "predicted": "pos", "uncertainty": 0.7, "scores": {}},
        {"text": "dull", "id": 2, "predicted": "neg", "uncertainty": 0.4, "scores": {}},
        {"text": "skipped", "id": 3},
    ]
    tasks = to_label_studio(picked)
    assert tasks[0]["data"]["text"] == "fine film"
    assert tasks[0]["predictions"][0]["result"][0]["value"] == {"choices": ["pos"]}
    assert "predictions" not in tasks[2]
    # what Label Studio exports after annotation: the human corrected task 1, cancelled task 2
    tasks[0]["annotations"] = [{"result": [{"type": "choices", "value": {"choices": ["neg"]}}]}]
    tasks[1]["annotations"] = [
        {"was_cancelled": True, "result": [{"type": "choices", "value": {"choices": ["pos"]}}]}
    ]
    records, unlabelled = from_label_studio(tasks)
    assert records == [{"text": "fine film", "id": 1, "label": "neg"}] and unlabelled == 2

    source = write_jsonl(tmp_path / "picked.jsonl", picked)
    runner = CliRunner()
    exported = tmp_path / "tasks.json"
    assert (
        runner.invoke(app, ["data", "export", str(source), "--output", str(exported)]).exit_code
        == 0
    )
    data = json.loads(exported.read_text())
    data[1]["annotations"] = [{"result": [{"value": {"choices": ["pos"]}}]}]
    exported.write_text(json.dumps(data))
    labelled = tmp_path / "labelled.jsonl"
    result = runner.invoke(app, ["data", "import", str(exported), "--output", str(labelled)])
    assert result.exit_code == 0 and "2 tasks without a label" in result.output
    assert json.loads(labelled.read_text()) == {"text": "dull", "id": 2, "label": "pos"}
    exported.write_text('{"not": "a list"}')
    bad = runner.invoke(app, ["data", "import", str(exported), "--output", str(labelled)])
    assert bad.exit_code == 2 and "expected a JSON list" in bad.output
