"""The seed design's module path for ``TorTranscriptFetcher`` and the deprecated coordinators."""

from .app import SingleTorCoordinator, TorExitNodePool, TorTranscriptFetcher

__all__ = ["SingleTorCoordinator", "TorExitNodePool", "TorTranscriptFetcher"]
