"""Evaluation: test sets (testset.py) and metric definitions (metrics.py)."""
