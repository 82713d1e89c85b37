"""Adapters: implementations of the ports for concrete outside systems."""
