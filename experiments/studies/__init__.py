"""The studies, one folder each (experiments.lab.study says what a folder holds)."""
