"""The strategy advisor: rank strategies for a task, data size, model and machine (rank.py)."""
