"""Metrics, plots and the run report."""
