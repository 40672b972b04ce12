"""Test infrastructure: a private Tor network (TorLab) that runs in a loopback-only namespace."""

from __future__ import annotations

from .network import TorLab

__all__ = ["TorLab"]
