"""Batched inference shared by evaluation, prediction and every task's scoring loop."""
