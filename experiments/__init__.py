"""Experiments: configs, data, benchmarks, reports and the scripts researchers run."""
