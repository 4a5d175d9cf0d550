"""Preference tuning (DPO, ORPO, SimPO) of causal language models: a task whose model scores a
chosen and a rejected answer to the same prompt."""
