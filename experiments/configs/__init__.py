"""Experiment configs: one get_config() per file, loaded by path with --config=."""
