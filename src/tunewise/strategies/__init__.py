"""Strategies: which parameters of a task model train (see registry.py for the list)."""
