"""Using a finished run: the Predictor that `predict`, `eval` (and later the server) share."""
