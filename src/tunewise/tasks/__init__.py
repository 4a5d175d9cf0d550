"""Tasks: how to read, tokenize, score and decode one kind of problem (see registry.py)."""
