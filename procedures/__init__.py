"""Experiment procedures (PyMeasure Procedures)."""
