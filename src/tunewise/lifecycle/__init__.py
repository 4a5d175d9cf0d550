"""The model after training: collect traffic, re-fine-tune, compare and promote, watch drift."""
