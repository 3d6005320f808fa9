"""Data pipelines for the tasks: text corpora (`text`), read once, laid out as NumPy arrays."""
