"""Playlists and channels on the fake YouTube, in the shapes real YouTube sends them.

A playlist page (``/playlist?list=ID``) and a channel's Videos tab (``/@handle/videos``,
``/channel/UC...``, ``/c/NAME``, ``/user/NAME``) are HTML with ``ytcfg.set({...})`` and
``var ytInitialData = {...}``: a ``playlistVideoListRenderer`` of 100 ``playlistVideoRenderer``s,
or a ``richGridRenderer`` of 30 ``richItemRenderer``s, each ending in a
``continuationItemRenderer`` whose token the InnerTube ``browse`` endpoint answers with the next
page (``onResponseReceivedActions[].appendContinuationItemsAction``). ``browse`` also answers by
``browseId`` (``VL<playlist id>``, yt-dlp's reload "with unavailable videos"; a channel's UC id
with the Videos tab's params) and ``navigation/resolve_url`` maps a URL to that browse endpoint,
yt-dlp's fallback when a page fails. A missing or private playlist is YouTube's ``alerts``; an
unknown channel a 404, on the page and on ``resolve_url``.

Validated against the real yt-dlp (tests/test_courses.py): the shapes are those its YouTube tab
extractor reads. Scripts act on course requests like on a video's: a page is a WATCH step, an
InnerTube call a PLAYER step, matched by the course id (the log's ``video_id`` column).
"""

from __future__ import annotations

import base64
import html
import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

from . import _pages as pages
from ._pages import FakeVideo, sample_videos
from ._scripts import Behavior, Script, Step
from ._server import Reply, Request

#: Videos on a playlist page and on each of its continuations, like YouTube.
PLAYLIST_PAGE_SIZE = 100
#: Videos on a channel's Videos tab and each continuation, like YouTube.
CHANNEL_PAGE_SIZE = 30
#: The ``params`` of the browse endpoint of a channel's Videos tab (YouTube's value).
VIDEOS_TAB_PARAMS = "EgZ2aWRlb3PyBgQKAjoA"
#: yt-dlp's reload of a playlist "with unavailable videos" sends these params.
UNAVAILABLE_VIDEOS_PARAMS = "wgYCCAA="
MISSING_PLAYLIST_ALERT = "The playlist does not exist."
PRIVATE_PLAYLIST_ALERT = "This playlist is private."
CLIENT_VERSION = "2.20250101.00.00"
_HTML = "text/html; charset=utf-8"
_JSON = "application/json; charset=UTF-8"
_CHANNEL_PATH = re.compile(
    r"/(?:(?P<handle>@[^/]+)|channel/(?P<ucid>UC[A-Za-z0-9_-]{22})|c/(?P<custom>[^/]+)|user/(?P<user>[^/]+))"
    r"(?P<tab>/[^/]+)?/?"
)
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

Claim = Callable[[Step, str | None, str], Script | None]


class FakeCourseKind(StrEnum):
    PLAYLIST = "playlist"
    CHANNEL = "channel"


@dataclass(frozen=True)
class FakeCourse:
    """A playlist, or a channel whose Videos tab lists ``videos`` (newest first)."""

    kind: FakeCourseKind
    #: The playlist id, or the channel's UC id.
    course_id: str
    title: str
    videos: tuple[FakeVideo, ...]
    channel: str = "Professor Loopback"
    channel_id: str = "UCprofessorLoopback00001"
    handle: str = "@professorloopback"
    #: Older channel URLs: /c/<custom_url> and /user/<user_name>.
    custom_url: str | None = None
    user_name: str | None = None
    #: A private playlist: its page carries YouTube's alert and no videos.
    private: bool = False
    #: Seconds per video, by id (default: derived from the video's transcript).
    durations: dict[str, int] = field(default_factory=dict, compare=False)

    def duration(self, video: FakeVideo) -> int:
        if video.video_id in self.durations:
            return self.durations[video.video_id]
        last = video.snippets()[-1]
        return int(last.start + last.duration) + 1

    @property
    def page_size(self) -> int:
        return PLAYLIST_PAGE_SIZE if self.kind is FakeCourseKind.PLAYLIST else CHANNEL_PAGE_SIZE


def fake_playlist(
    n: int, *, playlist_id: str | None = None, title: str | None = None, seed: str = "playlist", **options: object
) -> FakeCourse:
    """A playlist of ``n`` distinct default videos (deterministic ids, titles, durations)."""
    rng = random.Random(f"{seed}/playlist")
    playlist_id = playlist_id or "PL" + "".join(rng.choice(_ALPHABET) for _ in range(32))
    return FakeCourse(
        FakeCourseKind.PLAYLIST,
        playlist_id,
        title or f"Lecture series {seed}",
        tuple(sample_videos(n, seed=seed)),
        **options,  # type: ignore[arg-type]
    )


def fake_channel(
    n: int,
    *,
    handle: str = "@professorloopback",
    name: str = "Professor Loopback",
    seed: str = "channel",
    **options: object,
) -> FakeCourse:
    """A channel whose Videos tab lists ``n`` distinct default videos."""
    rng = random.Random(f"{seed}/channel")
    channel_id = str(options.pop("channel_id", "UC" + "".join(rng.choice(_ALPHABET) for _ in range(22))))
    return FakeCourse(
        FakeCourseKind.CHANNEL,
        channel_id,
        name,
        tuple(sample_videos(n, seed=seed)),
        channel=name,
        channel_id=channel_id,
        handle=handle,
        **options,  # type: ignore[arg-type]
    )


class CourseCatalog:
    """The courses the fake serves, and its answers to course requests (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._playlists: dict[str, FakeCourse] = {}
        self._channels: dict[str, FakeCourse] = {}

    def add(self, course: FakeCourse) -> None:
        """Register (or replace) a course under every URL that names it."""
        with self._lock:
            if course.kind is FakeCourseKind.PLAYLIST:
                self._playlists[course.course_id] = course
                return
            for key in (
                course.channel_id,
                course.handle.lower(),
                _named("c", course.custom_url),
                _named("user", course.user_name),
            ):
                if key:
                    self._channels[key] = course

    def playlist(self, playlist_id: str) -> FakeCourse | None:
        with self._lock:
            return self._playlists.get(playlist_id)

    def channel(self, key: str) -> FakeCourse | None:
        with self._lock:
            return self._channels.get(key if key.startswith("UC") else key.lower())

    # --- routing --------------------------------------------------------------------------

    def answer(self, request: Request, claim: Claim) -> Reply | None:
        """The reply to a course request, or None if the request is not about courses."""
        if request.method == "GET" and request.path == "/playlist":
            return self._playlist_page(request, claim)
        if request.method == "GET" and (match := _CHANNEL_PATH.fullmatch(request.path)):
            return self._channel_page(request, match, claim)
        if request.method == "POST" and request.path == "/youtubei/v1/browse":
            return self._innertube(request, claim, self._browse)
        if request.method == "POST" and request.path == "/youtubei/v1/navigation/resolve_url":
            return self._innertube(request, claim, self._resolve_url)
        return None

    def _playlist_page(self, request: Request, claim: Claim) -> Reply:
        playlist_id = request.query.get("list", "")
        blocked = _page_block(request, claim, playlist_id)
        if blocked is not None:
            return blocked
        course = self.playlist(playlist_id)
        if course is None or course.private:
            alert = PRIVATE_PLAYLIST_ALERT if course is not None else MISSING_PLAYLIST_ALERT
            return Reply(
                200,
                _page(alert_data(alert), title="YouTube").encode(),
                _HTML,
                "private" if course is not None else "missing",
                playlist_id,
            )
        data = playlist_data(course)
        return Reply(200, _page(data, title=f"{course.title} - YouTube").encode(), _HTML, "ok", playlist_id)

    def _channel_page(self, request: Request, match: re.Match[str], claim: Claim) -> Reply:
        key = (
            match.group("ucid")
            or match.group("handle")
            or _named("c", match.group("custom"))
            or _named("user", match.group("user"))
            or ""
        )
        course = self.channel(key)
        course_id = course.course_id if course is not None else key
        blocked = _page_block(request, claim, course_id)
        if blocked is not None:
            return blocked
        tab = (match.group("tab") or "/featured")[1:]
        if course is None or tab not in ("videos", "featured"):
            return Reply(404, pages.error_page(404, "Not Found").encode(), _HTML, "not-found", course_id)
        data = channel_data(course, videos_tab=tab == "videos")
        return Reply(200, _page(data, title=f"{course.channel} - YouTube").encode(), _HTML, "ok", course_id)

    def _innertube(
        self,
        request: Request,
        claim: Claim,
        handler: Callable[[dict[str, object], Request], tuple[int, dict[str, object], str, str | None]],
    ) -> Reply:
        payload = _web_payload(request)
        if payload is None:
            body = pages.api_error(400, "Precondition check failed.", "FAILED_PRECONDITION")
            return Reply(400, body, _JSON, "bad-request")
        status, answer, outcome, course_id = handler(payload, request)
        script = claim(Step.PLAYER, course_id, request.client_ip) if course_id else None
        if script is not None and script.behavior is Behavior.RATE_LIMITED_PLAYER:
            error = pages.api_error(429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED")
            return Reply(429, error, _JSON, script.behavior.outcome, course_id)
        delay = script.delay if script is not None and script.behavior is Behavior.SLOW else 0.0
        return Reply(status, _json(answer), _JSON, outcome, course_id, delay=delay)

    def _browse(self, payload: dict[str, object], request: Request) -> tuple[int, dict[str, object], str, str | None]:
        token = payload.get("continuation")
        if isinstance(token, str):
            decoded = _decode_token(token)
            course = self._by_key(decoded[0]) if decoded else None
            if decoded is None or course is None:
                return 400, _invalid_argument(), "bad-token", None
            return 200, continuation_data(course, decoded[1]), "ok", course.course_id
        browse_id = payload.get("browseId")
        if isinstance(browse_id, str) and browse_id.startswith("VL"):
            course = self.playlist(browse_id[2:])
            if course is None or course.private:
                alert = PRIVATE_PLAYLIST_ALERT if course is not None else MISSING_PLAYLIST_ALERT
                return 200, alert_data(alert), "missing", browse_id[2:]
            return 200, playlist_data(course), "ok", course.course_id
        if isinstance(browse_id, str) and browse_id.startswith("UC"):
            course = self.channel(browse_id)
            if course is None:
                return 404, _not_found_error(), "not-found", browse_id
            return (
                200,
                channel_data(course, videos_tab=payload.get("params") == VIDEOS_TAB_PARAMS),
                "ok",
                course.course_id,
            )
        return 400, _invalid_argument(), "bad-request", None

    def _resolve_url(
        self, payload: dict[str, object], request: Request
    ) -> tuple[int, dict[str, object], str, str | None]:
        url = urlsplit(str(payload.get("url", "")))
        if url.path == "/playlist":
            playlist_id = dict(part.split("=", 1) for part in url.query.split("&") if "=" in part).get("list", "")
            course = self.playlist(playlist_id)
            if course is None:
                return 404, _not_found_error(), "not-found", playlist_id
            return 200, _resolved(f"VL{playlist_id}", None, f"/playlist?list={playlist_id}"), "ok", playlist_id
        match = _CHANNEL_PATH.fullmatch(url.path)
        key = (
            (
                match.group("ucid")
                or match.group("handle")
                or _named("c", match.group("custom"))
                or _named("user", match.group("user"))
            )
            if match
            else None
        )
        course = self.channel(key) if key else None
        if course is None:
            return 404, _not_found_error(), "not-found", key
        params = VIDEOS_TAB_PARAMS if match and match.group("tab") == "/videos" else None
        return 200, _resolved(course.channel_id, params, f"/{course.handle}"), "ok", course.course_id

    def _by_key(self, key: str) -> FakeCourse | None:
        kind, _, course_id = key.partition(":")
        return self.playlist(course_id) if kind == "playlist" else self.channel(course_id)


def _named(prefix: str, name: str | None) -> str | None:
    return f"{prefix}/{name.lower()}" if name else None


def _page_block(request: Request, claim: Claim, course_id: str) -> Reply | None:
    """A scripted block of a course page (a WATCH step), as YouTube would send it."""
    script = claim(Step.WATCH, course_id, request.client_ip)
    behavior = script.behavior if script is not None else Behavior.OK
    match behavior:
        case Behavior.RECAPTCHA:
            return Reply(200, pages.recaptcha_page().encode(), _HTML, behavior.outcome, course_id)
        case Behavior.RECAPTCHA_REDIRECT:
            page_url = quote(f"https://www.youtube.com{request.path}?{_query(request)}", safe=":/")
            token = base64.urlsafe_b64encode(request.client_ip.encode()).decode().rstrip("=")
            location = f"{pages.SORRY_URL}?continue={page_url}&q={token}"
            return Reply(
                302, pages.moved_page(location).encode(), _HTML, behavior.outcome, course_id, (("Location", location),)
            )
        case Behavior.RATE_LIMITED_WATCH:
            return Reply(429, pages.too_many_requests_page().encode(), _HTML, behavior.outcome, course_id)
        case Behavior.SERVER_ERROR:
            return Reply(
                500, pages.error_page(500, "Internal Server Error").encode(), _HTML, behavior.outcome, course_id
            )
        case Behavior.STALL:
            return Reply(0, b"", _HTML, behavior.outcome, course_id, stall=True)
    return None


def _query(request: Request) -> str:
    return "&".join(f"{name}={value}" for name, value in request.query.items())


def _web_payload(request: Request) -> dict[str, object] | None:
    """The JSON body of an InnerTube call from the WEB client (what yt-dlp sends), else None."""
    if not request.content_type.startswith("application/json"):
        return None
    try:
        payload = json.loads(request.body)
    except ValueError:
        return None
    context = payload.get("context") if isinstance(payload, dict) else None
    client = context.get("client") if isinstance(context, dict) else None
    if not isinstance(client, dict) or client.get("clientName") != "WEB":
        return None
    return payload


# --- bodies -------------------------------------------------------------------------------


def _json(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _page(data: dict[str, object], *, title: str) -> str:
    """YouTube's page: ytcfg, then ytInitialData in a script (``<`` escaped as YouTube does)."""
    ytcfg = {
        "INNERTUBE_API_KEY": pages.API_KEY,
        "INNERTUBE_API_VERSION": "v1",
        "INNERTUBE_CLIENT_NAME": "WEB",
        "INNERTUBE_CLIENT_VERSION": CLIENT_VERSION,
        "INNERTUBE_CONTEXT_CLIENT_NAME": 1,
        "INNERTUBE_CONTEXT": {
            "client": {
                "clientName": "WEB",
                "clientVersion": CLIENT_VERSION,
                "hl": "en",
                "gl": "US",
                "visitorData": _visitor_data(),
            }
        },
        "VISITOR_DATA": _visitor_data(),
    }
    initial = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    return (
        '<!DOCTYPE html><html lang="en" dir="ltr"><head>'
        f"<title>{html.escape(title)}</title>"
        f'<script nonce="fake">ytcfg.set({json.dumps(ytcfg)});</script></head><body>'
        f'<script nonce="fake">var ytInitialData = {initial};</script></body></html>'
    )


def _visitor_data() -> str:
    return "CgtGYWtlVmlzaXRvcg%3D%3D"


def _response_context() -> dict[str, object]:
    return {"visitorData": _visitor_data(), "serviceTrackingParams": []}


def _text(text: str) -> dict[str, Any]:
    return {"runs": [{"text": text}]}


def _length_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _owner_runs(course: FakeCourse) -> dict[str, object]:
    return {
        "runs": [
            {
                "text": course.channel,
                "navigationEndpoint": {
                    "commandMetadata": {
                        "webCommandMetadata": {"url": f"/{course.handle}", "webPageType": "WEB_PAGE_TYPE_CHANNEL"}
                    },
                    "browseEndpoint": {"browseId": course.channel_id, "canonicalBaseUrl": f"/{course.handle}"},
                },
            }
        ]
    }


def _thumbnail(video_id: str) -> dict[str, object]:
    return {"thumbnails": [{"url": f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg", "width": 480, "height": 360}]}


def _continuation_item(course: FakeCourse, offset: int) -> dict[str, object]:
    token = _encode_token(f"{course.kind.value}:{course.course_id}", offset)
    return {
        "continuationItemRenderer": {
            "trigger": "CONTINUATION_TRIGGER_ON_ITEM_SHOWN",
            "continuationEndpoint": {
                "clickTrackingParams": "CBcQ7zsYACITCfake",
                "commandMetadata": {"webCommandMetadata": {"sendPost": True, "apiUrl": "/youtubei/v1/browse"}},
                "continuationCommand": {"token": token, "request": "CONTINUATION_REQUEST_TYPE_BROWSE"},
            },
        }
    }


def _encode_token(key: str, offset: int) -> str:
    """An opaque continuation token (YouTube's are base64 protobuf; ours base64 JSON)."""
    raw = json.dumps([key, offset]).encode()
    return "4qmF" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, int] | None:
    if not token.startswith("4qmF"):
        return None
    body = token[4:]
    try:
        key, offset = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError):
        return None
    return (key, offset) if isinstance(key, str) and isinstance(offset, int) and offset >= 0 else None


def _items(course: FakeCourse, offset: int) -> list[dict[str, object]]:
    """One page of renderers from ``offset``, ending in a continuation if more follow."""
    render = _playlist_video if course.kind is FakeCourseKind.PLAYLIST else _rich_item
    end = offset + course.page_size
    items = [render(course, video, index) for index, video in enumerate(course.videos[offset:end], start=offset)]
    if end < len(course.videos):
        items.append(_continuation_item(course, end))
    return items


def _playlist_video(course: FakeCourse, video: FakeVideo, index: int) -> dict[str, object]:
    seconds = course.duration(video)
    return {
        "playlistVideoRenderer": {
            "videoId": video.video_id,
            "thumbnail": _thumbnail(video.video_id),
            "title": {
                **_text(video.title),
                "accessibility": {
                    "accessibilityData": {"label": f"{video.title} by {video.channel} {seconds} seconds"}
                },
            },
            "index": {"simpleText": str(index + 1)},
            "shortBylineText": _owner_runs(course),
            "lengthText": {
                "accessibility": {"accessibilityData": {"label": f"{seconds} seconds"}},
                "simpleText": _length_text(seconds),
            },
            "navigationEndpoint": {
                "commandMetadata": {
                    "webCommandMetadata": {
                        "url": f"/watch?v={video.video_id}&list={course.course_id}&index={index + 1}",
                        "webPageType": "WEB_PAGE_TYPE_WATCH",
                    }
                },
                "watchEndpoint": {"videoId": video.video_id, "playlistId": course.course_id, "index": index},
            },
            "lengthSeconds": str(seconds),
            "isPlayable": True,
            "videoInfo": {"runs": [{"text": "1.2K views"}, {"text": " • "}, {"text": "2 years ago"}]},
        }
    }


def _rich_item(course: FakeCourse, video: FakeVideo, index: int) -> dict[str, object]:
    seconds = course.duration(video)
    return {
        "richItemRenderer": {
            "content": {
                "videoRenderer": {
                    "videoId": video.video_id,
                    "thumbnail": _thumbnail(video.video_id),
                    "title": _text(video.title)
                    | {"accessibility": {"accessibilityData": {"label": f"{video.title} {seconds} seconds"}}},
                    "descriptionSnippet": _text(f"Lecture {len(course.videos) - index} of the course."),
                    "publishedTimeText": {"simpleText": "2 years ago"},
                    "lengthText": {
                        "accessibility": {"accessibilityData": {"label": f"{seconds} seconds"}},
                        "simpleText": _length_text(seconds),
                    },
                    "viewCountText": {"simpleText": "1,234 views"},
                    "navigationEndpoint": {
                        "commandMetadata": {
                            "webCommandMetadata": {
                                "url": f"/watch?v={video.video_id}",
                                "webPageType": "WEB_PAGE_TYPE_WATCH",
                            }
                        },
                        "watchEndpoint": {"videoId": video.video_id},
                    },
                    "thumbnailOverlays": [
                        {
                            "thumbnailOverlayTimeStatusRenderer": {
                                "text": {"simpleText": _length_text(seconds)},
                                "style": "DEFAULT",
                            }
                        }
                    ],
                }
            }
        }
    }


def playlist_data(course: FakeCourse) -> dict[str, object]:
    """ytInitialData of a playlist's page (and of ``browse`` with ``VL<id>``): the first 100."""
    count = len(course.videos)
    return {
        "responseContext": _response_context(),
        "contents": {
            "twoColumnBrowseResultsRenderer": {
                "tabs": [
                    {
                        "tabRenderer": {
                            "selected": True,
                            "content": {
                                "sectionListRenderer": {
                                    "contents": [
                                        {
                                            "itemSectionRenderer": {
                                                "contents": [
                                                    {
                                                        "playlistVideoListRenderer": {
                                                            "contents": _items(course, 0),
                                                            "playlistId": course.course_id,
                                                            "isEditable": False,
                                                            "canReorder": False,
                                                            "targetId": course.course_id,
                                                        }
                                                    },
                                                ]
                                            }
                                        }
                                    ],
                                    "targetId": "pl-target",
                                }
                            },
                        }
                    }
                ]
            }
        },
        "header": {
            "playlistHeaderRenderer": {
                "playlistId": course.course_id,
                "title": {"simpleText": course.title},
                "numVideosText": _text(f"{count} videos"),
                "ownerText": _owner_runs(course),
                "privacy": "PUBLIC",
                "stats": [_text(f"{count} videos"), {"simpleText": "12,345 views"}, _text("Updated today")],
                "byline": [{"playlistBylineRenderer": {"text": _text(f"{count} videos")}}],
            }
        },
        "metadata": {
            "playlistMetadataRenderer": {
                "title": course.title,
                "description": "",
                "androidAppindexingLink": "",
                "iosAppindexingLink": "",
            }
        },
        "microformat": {
            "microformatDataRenderer": {
                "urlCanonical": f"https://www.youtube.com/playlist?list={course.course_id}",
                "title": course.title,
                "noindex": False,
                "unlisted": False,
            }
        },
    }


def channel_data(course: FakeCourse, *, videos_tab: bool) -> dict[str, object]:
    """ytInitialData of a channel page: its Home and Videos tabs, one of them selected."""
    base = f"/{course.handle}"
    videos: dict[str, object] = {
        "endpoint": {
            "commandMetadata": {
                "webCommandMetadata": {"url": f"{base}/videos", "webPageType": "WEB_PAGE_TYPE_CHANNEL"}
            },
            "browseEndpoint": {"browseId": course.channel_id, "params": VIDEOS_TAB_PARAMS, "canonicalBaseUrl": base},
        },
        "title": "Videos",
        "selected": videos_tab,
    }
    if videos_tab:
        videos["content"] = {
            "richGridRenderer": {"contents": _items(course, 0), "targetId": f"browse-feed{course.channel_id}videos"}
        }
    home: dict[str, object] = {
        "endpoint": {
            "commandMetadata": {
                "webCommandMetadata": {"url": f"{base}/featured", "webPageType": "WEB_PAGE_TYPE_CHANNEL"}
            },
            "browseEndpoint": {"browseId": course.channel_id, "canonicalBaseUrl": base},
        },
        "title": "Home",
        "selected": not videos_tab,
    }
    if not videos_tab:
        home["content"] = {"sectionListRenderer": {"contents": [], "targetId": "browse-feed-home"}}
    return {
        "responseContext": _response_context(),
        "contents": {"twoColumnBrowseResultsRenderer": {"tabs": [{"tabRenderer": home}, {"tabRenderer": videos}]}},
        "header": {
            "pageHeaderRenderer": {
                "pageTitle": course.channel,
                "content": {
                    "pageHeaderViewModel": {"title": {"dynamicTextViewModel": {"text": {"content": course.channel}}}}
                },
            }
        },
        "metadata": {
            "channelMetadataRenderer": {
                "title": course.channel,
                "description": f"Lectures by {course.channel}.",
                "externalId": course.channel_id,
                "channelUrl": f"https://www.youtube.com/channel/{course.channel_id}",
                "vanityChannelUrl": f"http://www.youtube.com/{course.handle}",
                "ownerUrls": [f"http://www.youtube.com/{course.handle}"],
                "keywords": "",
                "isFamilySafe": True,
            }
        },
        "microformat": {
            "microformatDataRenderer": {
                "urlCanonical": f"https://www.youtube.com/channel/{course.channel_id}",
                "title": course.channel,
                "noindex": False,
                "unlisted": False,
            }
        },
    }


def continuation_data(course: FakeCourse, offset: int) -> dict[str, object]:
    """``browse`` with a continuation token: the next page, appended to the list."""
    return {
        "responseContext": _response_context(),
        "onResponseReceivedActions": [
            {
                "clickTrackingParams": "CBcQ7zsYACITCfake",
                "appendContinuationItemsAction": {
                    "continuationItems": _items(course, offset),
                    "targetId": course.course_id,
                },
            }
        ],
    }


def alert_data(message: str) -> dict[str, object]:
    """What YouTube's page (or ``browse``) says of a missing or private playlist."""
    return {
        "responseContext": _response_context(),
        "alerts": [
            {
                "alertWithButtonRenderer": {
                    "type": "ERROR",
                    "text": {"simpleText": message},
                    "dismissButton": {
                        "buttonRenderer": {
                            "style": "STYLE_DEFAULT",
                            "size": "SIZE_DEFAULT",
                            "isDisabled": False,
                            "icon": {"iconType": "REMOVE"},
                        }
                    },
                }
            }
        ],
    }


def _resolved(browse_id: str, params: str | None, url: str) -> dict[str, object]:
    endpoint: dict[str, object] = {"browseId": browse_id}
    if params:
        endpoint["params"] = params
    return {
        "responseContext": _response_context(),
        "endpoint": {
            "commandMetadata": {
                "webCommandMetadata": {
                    "url": url,
                    "webPageType": "WEB_PAGE_TYPE_BROWSE",
                    "apiUrl": "/youtubei/v1/browse",
                }
            },
            "browseEndpoint": endpoint,
        },
    }


def _not_found_error() -> dict[str, object]:
    return {
        "error": {
            "code": 404,
            "message": "Requested entity was not found.",
            "errors": [{"message": "Requested entity was not found.", "domain": "global", "reason": "notFound"}],
            "status": "NOT_FOUND",
        }
    }


def _invalid_argument() -> dict[str, object]:
    return {
        "error": {
            "code": 400,
            "message": "Request contains an invalid argument.",
            "errors": [
                {"message": "Request contains an invalid argument.", "domain": "global", "reason": "badRequest"}
            ],
            "status": "INVALID_ARGUMENT",
        }
    }


__all__ = [
    "CHANNEL_PAGE_SIZE",
    "PLAYLIST_PAGE_SIZE",
    "CourseCatalog",
    "FakeCourse",
    "FakeCourseKind",
    "fake_channel",
    "fake_playlist",
]
