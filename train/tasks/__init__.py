"""Tasks: one file per kind of experiment, registered by name (config.task)."""
