"""Benchmarks of the exit-rotation designs on the private Tor network (see README.md)."""
