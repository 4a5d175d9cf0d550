"""`tunewise ui`: a browser workbench (Gradio) over the public API: Data, Advice, Train,
Compare and Try tabs. Training runs as `tunewise train` subprocesses; nothing here trains or
transforms data itself."""

from tunewise.ui.app import build_app, launch
from tunewise.ui.context import UIContext

__all__ = ["UIContext", "build_app", "launch"]
