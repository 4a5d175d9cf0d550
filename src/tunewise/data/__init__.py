"""Data loading: readers that keep line numbers so every bad record can be named."""
