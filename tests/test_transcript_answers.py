"""The answers a fetch keeps (watch page, player) are freed with the fetch, by reference
counting alone: no cycle through the session's response hook waits for the cyclic GC."""

from __future__ import annotations

import gc
import weakref

import requests
from requests.adapters import BaseAdapter

from yt_study_buddy.youtube._transcripts import _Answers


class Answering(BaseAdapter):
    """Answers every request with an empty 200, as the transport would (no network)."""

    def send(self, request, **kwargs):
        response = requests.Response()
        response.status_code = 200
        response._content = b"{}"
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


def test_the_kept_watch_page_dies_with_the_answers_and_the_hook_is_removed():
    session = requests.Session()
    session.mount("https://", Answering())
    gc.disable()  # only reference counting may free it
    try:
        answers = _Answers()
        with answers.kept_from(session):
            session.get("https://www.youtube.com/watch?v=abcdefghijk")
        assert answers.watch is not None and answers.watch.url.endswith("v=abcdefghijk")
        assert session.hooks["response"] == []
        kept = weakref.ref(answers.watch)
        del answers
        assert kept() is None
    finally:
        gc.enable()
