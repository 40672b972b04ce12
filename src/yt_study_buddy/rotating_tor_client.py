"""The seed design's module path for ``RotatingTorClient`` (it lives in ``yt_study_buddy.tor``)."""

from .tor import RotatingTorClient

__all__ = ["RotatingTorClient"]
