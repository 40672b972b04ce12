"""Content and response bodies of the fake YouTube: videos, transcripts and the exact shapes
youtube-transcript-api 1.2.x parses (watch HTML, InnerTube player JSON, timedtext XML, oEmbed).

Bodies follow research §1.7 (verified against the library), with real YouTube's details where
they matter to a client: double-escaped timedtext entities, the U+2019 in the bot-check reason.
"""

from __future__ import annotations

import base64
import html
import ipaddress
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, quote, urlsplit

from ...youtube._chapters import Chapter
from ...youtube._transcripts import Snippet

#: Real video ids are 11 characters from the URL-safe base64 alphabet.
VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
#: Served on every watch page; the player endpoint rejects any other key (like YouTube).
API_KEY = "AIzaSyFAKE-yt-study-buddy-0123456789ab"
#: The `v` value of the consent form; the library echoes it back as ``CONSENT=YES+<v>``.
CONSENT_VALUE = "cb.20210328-17-p0.en+FX+417"
BOT_CHECK_REASON = "Sign in to confirm you\u2019re not a bot"
AGE_RESTRICTED_REASON = "This video may be inappropriate for some users."
UNAVAILABLE_REASON = "This video is unavailable"
UNPLAYABLE_REASON = "Video unavailable"
UNPLAYABLE_SUBREASONS = ("The uploader has not made this video available in your country",)
TIMEDTEXT_URL = "https://www.youtube.com/api/timedtext"
SORRY_URL = "https://www.google.com/sorry/index"

#: Translation targets offered for translatable tracks: (code, name).
TRANSLATION_LANGUAGES: tuple[tuple[str, str], ...] = (
    ("de", "German"),
    ("es", "Spanish"),
    ("fr", "French"),
    ("ja", "Japanese"),
    ("pt", "Portuguese"),
)


@dataclass(frozen=True)
class FakeTrack:
    """A caption track. Without explicit snippets its text is generated from the video id."""

    language_code: str
    language_name: str
    generated: bool = False
    translatable: bool = True
    snippets: tuple[Snippet, ...] | None = None


@dataclass(frozen=True)
class FakeVideo:
    """A video the fake serves: its metadata (videoDetails, oEmbed) plus its caption tracks.

    ``length_seconds`` None: just past the end of its English transcript. ``chapters`` are the
    uploader's, shown on the watch page's player bar and in its chapters panel."""

    video_id: str
    title: str
    channel: str
    tracks: tuple[FakeTrack, ...] = (FakeTrack("en", "English"),)
    translation_languages: tuple[tuple[str, str], ...] = TRANSLATION_LANGUAGES
    description: str = ""
    length_seconds: int | None = None
    chapters: tuple[Chapter, ...] = ()

    @property
    def length(self) -> int:
        """The video's length in whole seconds, as videoDetails.lengthSeconds says it."""
        if self.length_seconds is not None:
            return self.length_seconds
        lines = self.snippets("en")
        return math.ceil(max((s.start + s.duration for s in lines), default=0.0))

    def track(self, language_code: str, *, generated: bool = False) -> FakeTrack | None:
        """The track a timedtext URL names (``lang`` and whether ``kind=asr``), if any."""
        for candidate in self.tracks:
            if candidate.language_code == language_code and candidate.generated == generated:
                return candidate
        return None

    def snippets(
        self,
        language_code: str = "en",
        *,
        generated: bool = False,
        translate_to: str | None = None,
    ) -> list[Snippet]:
        """What a client should get for this track: the expected value in tests."""
        track = self.track(language_code, generated=generated)
        if track is not None and track.snippets is not None:
            lines = list(track.snippets)
        else:
            lines = generate_snippets(self.video_id, language_code)
        if translate_to is not None:
            lines = [Snippet(translated(s.text, translate_to), s.start, s.duration) for s in lines]
        return lines


_TOPICS = (
    "photosynthesis",
    "the French Revolution",
    "linear algebra",
    "supply & demand",
    "neural networks",
    "plate tectonics",
    "the Krebs cycle",
    "Shakespeare's sonnets",
    "recursion",
    "compound interest",
    "the water cycle",
    "quantum tunnelling",
)
_SENTENCES = (
    "so today we're going to talk about {t}",
    "the key idea behind {t} is actually pretty simple",
    "if you've ever wondered why {t} matters, stick around",
    "let's write that down: {t} & {u} are closely related",
    "okay so here's the thing about {t} that nobody tells you",
    'you can think of {t} as a kind of "black box" for now',
    "don't worry if {t} doesn't click right away",
    "now let me show you an example on the board",
    "remember, {t} isn't the same thing as {u}",
    "that's why {t} shows up in so many exam questions",
    "pause the video here and try this one yourself",
    "[Music]",
    "what happens when we combine {t} with {u}?",
    "it's a bit like comparing apples & oranges",
    "alright, let's recap what we've covered so far",
    "and that's where {u} comes in",
    "you'll see this pattern again and again",
    "the textbook's definition is a little confusing, so bear with me",
)


def generate_snippets(video_id: str, language_code: str = "en") -> list[Snippet]:
    """A deterministic, speech-like transcript for any id (a few dozen lines, overlapping
    durations like real auto-captions). Non-English tracks carry a ``[xx]`` marker."""
    rng = random.Random(f"{video_id}/transcript")
    topic, other = rng.sample(_TOPICS, 2)
    lines: list[Snippet] = []
    start = round(rng.uniform(0.0, 1.5), 2)
    for _ in range(rng.randint(30, 48)):
        text = rng.choice(_SENTENCES).format(t=topic, u=other)
        duration = round(rng.uniform(1.5, 5.0), 2)
        if language_code != "en":
            text = translated(text, language_code)
        lines.append(Snippet(text, start, duration))
        start = round(start + duration * rng.uniform(0.6, 1.0), 2)
    return lines


def translated(text: str, language_code: str) -> str:
    """The fake's "machine translation": recognisable in assertions, deterministic."""
    return f"[{language_code}] {text}"


def default_video(video_id: str) -> FakeVideo:
    """The video served for a well-formed id nobody registered: one translatable English
    track and a deterministic title, so batch tests need no set-up."""
    rng = random.Random(f"{video_id}/title")
    topic = rng.choice(_TOPICS)
    return FakeVideo(
        video_id=video_id,
        title=f"Study session {rng.randint(1, 99)}: {topic} explained",
        channel=rng.choice(("Fake Lecture Hall", "Crash Course Lab", "Professor Loopback")),
        description=f"Everything about {topic} in one session.\nSlides: https://example.com/{video_id}",
    )


def sample_videos(n: int, *, seed: str = "sample") -> list[FakeVideo]:
    """``n`` distinct default videos with deterministic, well-formed ids (nothing to register:
    the fake serves any unregistered id as ``default_video``)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    rng = random.Random(seed)
    ids: dict[str, None] = {}
    while len(ids) < n:
        ids["".join(rng.choice(alphabet) for _ in range(11))] = None
    return [default_video(video_id) for video_id in ids]


#: The chapters `with_chapters` gives, and the share of the transcript before each.
_CHAPTER_PLAN = (("Introduction", 0.0), ("Worked example", 0.35), ("Recap and exam tips", 0.75))


def with_chapters(video: FakeVideo) -> FakeVideo:
    """``video`` with three chapters, each starting in the second a snippet of its English
    transcript starts (whole seconds, like YouTube's chapters)."""
    lines = video.snippets("en")
    if not lines:
        return video
    chapters = tuple(
        Chapter(title, float(int(lines[int(share * len(lines))].start)) if share else 0.0)
        for title, share in _CHAPTER_PLAN
    )
    return replace(video, chapters=chapters)


# --- answers recorded from real YouTube ---------------------------------------------------

_API_KEY_RE = re.compile(rb'"INNERTUBE_API_KEY":\s*"([a-zA-Z0-9_-]+)"')
_CONSENT_VALUE_RE = re.compile(rb'name="v" value="(.*?)"')


@dataclass(frozen=True)
class RecordedVideo:
    """A video served from answers recorded on real YouTube (see ``testing.recordings``).

    The bytes go out unchanged: the player answer names its own video id, and its timedtext
    ``baseUrl``s point at www.youtube.com with that id and ``lang=`` (plus ``kind=asr``), which
    the lab maps to the fake and the fake routes, so nothing needs rewriting. The fake adapts
    instead: it accepts the recorded watch page's ``INNERTUBE_API_KEY``, and it serves the one
    recorded timedtext document for every track of the video (only one was recorded; a
    translation gets it too). Without a recorded watch page the fake's own is served.
    """

    video_id: str
    title: str
    channel: str
    length_seconds: int
    description: str
    player: bytes
    timedtext: bytes
    watch_page: bytes | None = None

    @classmethod
    def from_answers(cls, player: bytes, timedtext: bytes, *, watch_page: bytes | None = None) -> RecordedVideo:
        """Read id, title, channel, length and description from the player's videoDetails."""
        details = json.loads(player)["videoDetails"]
        return cls(
            video_id=details["videoId"],
            title=details["title"],
            channel=details["author"],
            length_seconds=int(details["lengthSeconds"]),
            description=details.get("shortDescription", ""),
            player=player,
            timedtext=timedtext,
            watch_page=watch_page,
        )

    @property
    def api_key(self) -> str | None:
        """The InnerTube key the recorded watch page hands out (None: no recorded page)."""
        match = _API_KEY_RE.search(self.watch_page or b"")
        return match.group(1).decode() if match else None

    def as_fake_video(self) -> FakeVideo:
        """The same metadata as a `FakeVideo`: what oEmbed and a synthetic watch page show."""
        return FakeVideo(
            self.video_id,
            self.title,
            self.channel,
            description=self.description,
            length_seconds=self.length_seconds,
        )


def consent_value(page: bytes) -> str | None:
    """The ``v`` of a consent form: the library answers it with the cookie ``CONSENT=YES+<v>``."""
    match = _CONSENT_VALUE_RE.search(page)
    return match.group(1).decode() if match else None


# --- watch page --------------------------------------------------------------------------


def initial_data(video: FakeVideo) -> dict[str, object]:
    """The page's ``ytInitialData``, as far as chapters go, in real YouTube's shape: the player
    bar's ``markersMap`` (DESCRIPTION_CHAPTERS) and the chapters panel (macro markers). A video
    without chapters has the bare player bar of the recorded page."""
    bar: dict[str, object] = {"visibleOnLoad": {"key": ""}, "trackingParams": "CGMQocALIhMI"}
    panels: list[object] = [{"engagementPanelSectionListRenderer": {"panelIdentifier": "comment-item-section"}}]
    if video.chapters:
        chapters = [
            {
                "chapterRenderer": {
                    "title": {"simpleText": chapter.title},
                    "timeRangeStartMillis": round(chapter.start * 1000),
                    "thumbnail": {"thumbnails": []},
                }
            }
            for chapter in video.chapters
        ]
        bar["markersMap"] = [{"key": "DESCRIPTION_CHAPTERS", "value": {"chapters": chapters}}]
        markers = [
            {
                "macroMarkersListItemRenderer": {
                    "title": {"simpleText": chapter.title},
                    "timeDescription": {"simpleText": _clock(chapter.start)},
                    "onTap": {"watchEndpoint": {"videoId": video.video_id, "startTimeSeconds": int(chapter.start)}},
                }
            }
            for chapter in video.chapters
        ]
        panels.append(
            {
                "engagementPanelSectionListRenderer": {
                    "panelIdentifier": "engagement-panel-macro-markers-description-chapters",
                    "content": {"macroMarkersListRenderer": {"contents": markers}},
                }
            }
        )
    player_bar = {"playerBar": {"multiMarkersPlayerBarRenderer": bar}}
    return {
        "responseContext": {"serviceTrackingParams": []},
        "playerOverlays": {
            "playerOverlayRenderer": {"decoratedPlayerBarRenderer": {"decoratedPlayerBarRenderer": player_bar}}
        },
        "engagementPanels": panels,
    }


def _clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``, as YouTube shows a time."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _script_json(value: object) -> str:
    """JSON safe inside a ``<script>`` element, escaped like YouTube escapes it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def watch_page(video: FakeVideo) -> str:
    """A watch page carrying ``INNERTUBE_API_KEY`` the way ytcfg does (§1.3), and
    ``ytInitialData`` (`initial_data`) in a script of its body, like YouTube's."""
    title = html.escape(video.title)
    return (
        '<!DOCTYPE html><html style="font-size: 10px;font-family: Roboto, Arial, sans-serif;"'
        ' lang="en-US" dir="ltr"><head>'
        f"<title>{title} - YouTube</title>"
        f'<meta property="og:title" content="{title}">'
        f'<link rel="canonical" href="https://www.youtube.com/watch?v={video.video_id}">'
        '<script nonce="fake">ytcfg.set({"CLIENT_CANARY_STATE":"none","DEVICE":"cbr=Chrome",'
        f'"INNERTUBE_API_KEY": "{API_KEY}","INNERTUBE_API_VERSION":"v1",'
        '"INNERTUBE_CLIENT_NAME":"WEB","INNERTUBE_CLIENT_VERSION":"2.20250101.00.00",'
        '"INNERTUBE_CONTEXT_HL":"en","INNERTUBE_CONTEXT_GL":"US"});</script>'
        f'</head><body><div id="watch7-content"><h1>{title}</h1>'
        f'<span itemprop="author">{html.escape(video.channel)}</span></div>'
        f'<script nonce="fake">var ytInitialData = {_script_json(initial_data(video))};</script></body></html>'
    )


def consent_page(video_id: str) -> str:
    """The EU cookie wall: the library accepts it by setting CONSENT and asking again (§1.2)."""
    continue_url = html.escape(f"https://www.youtube.com/watch?v={video_id}")
    hidden = (
        ("gl", "DE"),
        ("m", "0"),
        ("pc", "yt"),
        ("continue", continue_url),
        ("x", "6"),
        ("v", CONSENT_VALUE),
        ("hl", "en"),
        ("src", "1"),
    )
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in hidden)
    return (
        '<!DOCTYPE html><html lang="en"><head><title>Before you continue to YouTube</title>'
        '</head><body><div class="consent-bump">Before you continue to YouTube'
        '<form action="https://consent.youtube.com/s" method="POST" style="display:inline;">'
        f'{inputs}<button aria-label="Accept all">Accept all</button></form></div></body></html>'
    )


def recaptcha_page() -> str:
    """The "unusual traffic" interstitial: no API key, a g-recaptcha div (→ IpBlocked)."""
    return (
        "<!DOCTYPE html><html><head><title>https://www.youtube.com/watch</title></head><body>"
        '<div id="infoDiv">Our systems have detected unusual traffic from your computer '
        "network. This page checks to see if it's really you sending the requests, and not a "
        'robot.</div><form id="captcha-form" action="index" method="post">'
        '<div class="g-recaptcha" data-sitekey="6LfwuyUTAAAAAOAmoS0fdqijC2PbbdH4kjq62Y1b">'
        "</div></form></body></html>"
    )


def sorry_url(video_id: str, client_ip: str) -> str:
    """Where a blocked watch page redirects: google.com/sorry with the watch URL to continue
    to (``?``, ``=``, ``&`` escaped like Google does) and ``q``, Google's token of the IP."""
    watch = quote(f"https://www.youtube.com/watch?v={video_id}", safe=":/")
    token = base64.urlsafe_b64encode(b"\x12\x04" + ipaddress.ip_address(client_ip).packed)
    return f"{SORRY_URL}?continue={watch}&q={token.decode().rstrip('=')}"


def sorry_video_id(query: dict[str, str]) -> str | None:
    """The video id in a sorry URL's ``continue`` (for the log), if it names a watch page."""
    continue_url = urlsplit(query.get("continue", ""))
    ids = parse_qs(continue_url.query).get("v", [])
    return ids[0] if continue_url.path == "/watch" and ids else None


def moved_page(location: str) -> str:
    """Google's body for a 302."""
    href = html.escape(location)
    return (
        '<HTML><HEAD><meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
        "<TITLE>302 Moved</TITLE></HEAD><BODY>\n<H1>302 Moved</H1>\nThe document has moved\n"
        f'<A HREF="{href}">here</A>.\r\n</BODY></HTML>\r\n'
    )


def sorry_page(continue_url: str, client_ip: str) -> str:
    """google.com/sorry/index (served with 429): the captcha form, titled with the blocked URL."""
    url = html.escape(continue_url)
    return (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8">'
        f'<title>{url}</title></head><body><div style="max-width:400px;">'
        '<form id="captcha-form" action="index" method="post">'
        '<script src="https://www.google.com/recaptcha/api.js" async defer></script>'
        '<div id="recaptcha" class="g-recaptcha" data-callback="submitCallback"'
        ' data-sitekey="6LfwuyUTAAAAAOAmoS0fdqijC2PbbdH4kjq62Y1b"></div>'
        f'<input type="hidden" name="continue" value="{url}"></form>'
        '<div style="font-size:13px;"><b>About this page</b><br><br>Our systems have detected '
        "unusual traffic from your computer network.  This page checks to see if it&#39;s really "
        "you sending the requests, and not a robot.<br><br>"
        f"IP address: {html.escape(client_ip)}<br>URL: {url}<br></div></div></body></html>"
    )


def too_many_requests_page() -> str:
    """What google.com/sorry ends on: a 429 HTML page."""
    return (
        "<html><head><title>429 Too Many Requests</title></head><body>"
        "<h1>Too Many Requests</h1>We're sorry, but you have sent too many requests to us "
        "recently. Please try again later.</body></html>"
    )


def error_page(status: int, reason: str) -> str:
    """Google's terse error page."""
    title = f"Error {status} ({reason})!!1"
    return f"<html><head><title>{title}</title></head><body>{reason}</body></html>"


# --- InnerTube player --------------------------------------------------------------------


def _caption_track(video_id: str, track: FakeTrack, *, po_token: bool) -> dict[str, object]:
    url = f"{TIMEDTEXT_URL}?v={video_id}"
    if po_token:
        url += "&exp=xpe"
    if track.generated:
        url += "&kind=asr"
    url += f"&lang={track.language_code}"
    return {
        "baseUrl": url,
        "name": {"runs": [{"text": track.language_name}]},
        "vssId": ("a." if track.generated else ".") + track.language_code,
        "languageCode": track.language_code,
        **({"kind": "asr"} if track.generated else {}),
        "isTranslatable": track.translatable,
        "trackName": "",
    }


def player_response(
    video: FakeVideo,
    *,
    tracks: Sequence[FakeTrack] | None = None,
    captions: bool = True,
    po_token: bool = False,
) -> bytes:
    """A playable video's InnerTube response; ``tracks`` overrides the video's own."""
    chosen = video.tracks if tracks is None else tuple(tracks)
    body: dict[str, object] = {
        "responseContext": {"visitorData": "CgtGYWtlVmlzaXRvcg%3D%3D"},
        "playabilityStatus": {"status": "OK", "playableInEmbed": True},
        "videoDetails": video_details(video),
    }
    if captions:
        body["captions"] = {
            "playerCaptionsTracklistRenderer": {
                "captionTracks": [_caption_track(video.video_id, t, po_token=po_token) for t in chosen],
                "audioTracks": [{"captionTrackIndices": list(range(len(chosen)))}],
                "translationLanguages": [
                    {"languageCode": code, "languageName": {"runs": [{"text": name}]}}
                    for code, name in video.translation_languages
                ],
                "defaultAudioTrackIndex": 0,
            }
        }
    return json.dumps(body).encode()


def video_details(video: FakeVideo) -> dict[str, object]:
    """The player answer's ``videoDetails``, with the fields of the recorded ANDROID answer
    (numbers as strings, like YouTube sends them)."""
    return {
        "videoId": video.video_id,
        "title": video.title,
        "lengthSeconds": str(video.length),
        "keywords": [video.channel, "study"],
        "channelId": "UC" + random.Random(f"{video.channel}/channel").randbytes(16).hex()[:22],
        "isOwnerViewing": False,
        "shortDescription": video.description,
        "isCrawlable": True,
        "thumbnail": {
            "thumbnails": [{"url": f"https://i.ytimg.com/vi/{video.video_id}/default.jpg", "width": 120, "height": 90}]
        },
        "allowRatings": True,
        "viewCount": "1234",
        "author": video.channel,
        "isPrivate": False,
        "isUnpluggedCorpus": False,
        "isLiveContent": False,
    }


def unplayable_response(status: str, reason: str, subreasons: Sequence[str] = ()) -> bytes:
    """A non-playable InnerTube answer: no captions, a playabilityStatus with an error screen
    (its reason in ``runs``, as in the recorded answers)."""
    playability: dict[str, object] = {"status": status, "reason": reason}
    if subreasons:
        playability["errorScreen"] = {
            "playerErrorMessageRenderer": {
                "reason": {"runs": [{"text": reason}]},
                "subreason": {"runs": [{"text": text} for text in subreasons]},
            }
        }
    body = {"responseContext": {}, "playabilityStatus": playability}
    return json.dumps(body, ensure_ascii=False).encode()


def api_error(code: int, message: str, status: str) -> bytes:
    """Google API error envelope (bad key, bad request, quota)."""
    return json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()


# --- timedtext, oEmbed, exit check -----------------------------------------------------


def _youtube_escape(text: str) -> str:
    """Escape twice, like real timedtext (``&amp;#39;``): HTML entities, then XML."""
    once = html.escape(text, quote=True).replace("&#x27;", "&#39;")
    return html.escape(once, quote=False)


def timedtext_xml(snippets: Sequence[Snippet]) -> bytes:
    """The srv1-style XML the library parses (§1.5)."""
    lines = "".join(f'<text start="{s.start}" dur="{s.duration}">{_youtube_escape(s.text)}</text>' for s in snippets)
    return f'<?xml version="1.0" encoding="utf-8" ?><transcript>{lines}</transcript>'.encode()


def oembed_json(video: FakeVideo) -> bytes:
    """YouTube's oEmbed answer (``format=json``)."""
    handle = re.sub(r"[^A-Za-z0-9]", "", video.channel)
    embed = f"https://www.youtube.com/embed/{video.video_id}?feature=oembed"
    body = {
        "title": video.title,
        "author_name": video.channel,
        "author_url": f"https://www.youtube.com/@{handle}",
        "type": "video",
        "height": 113,
        "width": 200,
        "version": "1.0",
        "provider_name": "YouTube",
        "provider_url": "https://www.youtube.com/",
        "thumbnail_height": 360,
        "thumbnail_width": 480,
        "thumbnail_url": f"https://i.ytimg.com/vi/{video.video_id}/hqdefault.jpg",
        "html": (
            f'<iframe width="200" height="113" src="{embed}" frameborder="0" allow="accelerometer; '
            "autoplay; clipboard-write; encrypted-media; gyroscope; picture-in-picture; "
            'web-share" referrerpolicy="strict-origin-when-cross-origin" allowfullscreen '
            f'title="{html.escape(video.title)}"></iframe>'
        ),
    }
    return json.dumps(body).encode()


def oembed_video_id(url: str) -> str | None:
    """The id in an oEmbed ``url=`` parameter (watch, youtu.be and shorts forms)."""
    match = re.search(r"(?:[?&]v=|youtu\.be/|/shorts/|/embed/)([A-Za-z0-9_-]{11})", url)
    return match.group(1) if match else None


def tor_check_json(client_ip: str) -> bytes:
    """check.torproject.org/api/ip: every client of the fake arrives through the lab's exits."""
    return json.dumps({"IsTor": True, "IP": client_ip}).encode()
