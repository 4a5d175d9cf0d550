"""Training: the HF Trainer plus tunewise's batching, throughput accounting and recipe."""
