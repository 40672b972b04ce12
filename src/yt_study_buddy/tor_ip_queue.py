"""The seed design's module path for ``TorIPQueue`` (it lives in ``yt_study_buddy.tor``)."""

from .tor import QueueStopped, TorIPQueue

__all__ = ["QueueStopped", "TorIPQueue"]
