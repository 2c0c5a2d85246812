"""Data-quality expectations: default GX suites per stage, recipe expectations, and the runner."""
