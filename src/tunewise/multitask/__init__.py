"""Multi-task learning: several tasks over one shared backbone, each with its own head,
tokenization, metrics and prediction (config `tasks:` + `multitask:`)."""
