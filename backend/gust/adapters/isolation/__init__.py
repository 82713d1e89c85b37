"""Isolated parsing: ports/isolation.py implemented with one short-lived process per call."""
