"""The flag-driven training system built on `cells`."""
