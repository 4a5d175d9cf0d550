"""The bundled demo: LoRA on minilm, on a support-message intent set written for tunewise."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
CONFIG = HERE / "quickstart.yaml"
DATA = HERE / "data"
SAMPLES = [
    "I was charged twice for my subscription this month",
    "the app freezes every time I open the camera screen",
    "where is my package? tracking hasn't moved in a week",
    "how do I change the email address on my profile",
]
