"""Experiment tracking: TensorBoard, MLflow and W&B through the Trainer's `report_to`
integrations, plus tunewise's own params (the resolved config), final metrics and artifacts."""
