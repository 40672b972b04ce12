"""Render a `Transcript` as a Markdown study note, plain text, JSON, SRT or WebVTT.

Subtitle formats come from youtube-transcript-api and keep every cue as fetched. The reading
formats (md, txt) collapse whitespace, drop cue-only snippets like ``[Music]`` and group the rest
into paragraphs; Markdown paragraphs start with a link to that second of the video.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from youtube_transcript_api import FetchedTranscript, FetchedTranscriptSnippet
from youtube_transcript_api.formatters import SRTFormatter, WebVTTFormatter

from ..youtube._transcripts import Snippet, Transcript
from ..youtube._video_ids import watch_url

FORMATS = ("md", "txt", "json", "srt", "vtt")

#: A paragraph may end at a sentence end once it is this long (seconds)...
PARAGRAPH_MIN_SECONDS = 45.0
#: ...and ends regardless once it is this long (auto captions often have no punctuation).
PARAGRAPH_MAX_SECONDS = 60.0

_WHITESPACE = re.compile(r"\s+")
_CUE_ONLY = re.compile(r"(?:\s|\[[^\]]*\]|[♪♫♬])+")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>])")


@dataclass(frozen=True)
class Provenance:
    """Where and when a transcript was fetched, printed in notes so a reader can judge it."""

    exit_ip: str | None
    fetched_at: datetime
    attempts: int = 1


def render(transcript: Transcript, fmt: str, *, provenance: Provenance) -> str:
    """Render ``transcript`` in one of `FORMATS`."""
    if fmt == "md":
        return _markdown(transcript, provenance)
    if fmt == "txt":
        return "\n\n".join(text for _, text in _paragraphs(transcript.snippets)) + "\n"
    if fmt == "json":
        return _json(transcript, provenance)
    if fmt == "srt":
        return SRTFormatter().format_transcript(_fetched(transcript))
    if fmt == "vtt":
        return WebVTTFormatter().format_transcript(_fetched(transcript))
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def clock(seconds: float) -> str:
    """``m:ss``-style time: ``mm:ss`` below an hour, ``h:mm:ss`` from then on (whole seconds)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _fetched(transcript: Transcript) -> FetchedTranscript:
    return FetchedTranscript(
        snippets=[FetchedTranscriptSnippet(s.text, s.start, s.duration) for s in transcript.snippets],
        video_id=transcript.video_id,
        language=transcript.language,
        language_code=transcript.language_code,
        is_generated=transcript.is_generated,
    )


def _paragraphs(snippets: Sequence[Snippet]) -> Iterator[tuple[float, str]]:
    """(start, text) per paragraph of the readable snippets."""
    start: float | None = None
    texts: list[str] = []
    for snippet in snippets:
        text = _WHITESPACE.sub(" ", snippet.text).strip()
        if not text or _CUE_ONLY.fullmatch(text):
            continue
        if start is not None:
            elapsed = snippet.start - start
            if elapsed >= PARAGRAPH_MAX_SECONDS or (
                elapsed >= PARAGRAPH_MIN_SECONDS and _SENTENCE_END.search(texts[-1])
            ):
                yield start, " ".join(texts)
                start, texts = None, []
        if start is None:
            start = snippet.start
        texts.append(text)
    if start is not None:
        yield start, " ".join(texts)


def _language_line(transcript: Transcript) -> str:
    line = f"{transcript.language} ({transcript.language_code})"
    kind = "auto-generated" if transcript.is_generated else "manual"
    if kind not in transcript.language:  # YouTube names ASR tracks "English (auto-generated)"
        line += f", {kind}"
    if transcript.translated_from:
        line += f", translated from {transcript.translated_from}"
    return line


def _provenance_line(provenance: Provenance) -> str:
    when = provenance.fetched_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = f"Tor exit {provenance.exit_ip}" if provenance.exit_ip else "unknown Tor exit"
    line = f"{when} via {where}"
    if provenance.attempts > 1:
        line += f" (attempt {provenance.attempts})"
    return line


def _md_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _markdown(transcript: Transcript, provenance: Provenance) -> str:
    video_id = transcript.video_id
    lines = [f"# {_md_escape(transcript.title or video_id)}", ""]
    if transcript.channel:
        lines.append(f"- **Channel:** {_md_escape(transcript.channel)}")
    lines += [
        f"- **Video:** <{watch_url(video_id)}>",
        f"- **Language:** {_md_escape(_language_line(transcript))}",
        f"- **Duration:** {clock(transcript.duration)}",
        f"- **Fetched:** {_provenance_line(provenance)}",
        "",
        "## Transcript",
        "",
    ]
    for start, text in _paragraphs(transcript.snippets):
        lines += [f"[{clock(start)}]({watch_url(video_id, start)}) {_md_escape(text)}", ""]
    return "\n".join(lines)


def _json(transcript: Transcript, provenance: Provenance) -> str:
    document = {
        "video_id": transcript.video_id,
        "url": watch_url(transcript.video_id),
        "title": transcript.title,
        "channel": transcript.channel,
        "language": transcript.language,
        "language_code": transcript.language_code,
        "is_generated": transcript.is_generated,
        "translated_from": transcript.translated_from,
        "duration": transcript.duration,
        "provenance": {
            "exit_ip": provenance.exit_ip,
            "fetched_at": provenance.fetched_at.astimezone(UTC).isoformat(),
            "attempts": provenance.attempts,
        },
        "snippets": _fetched(transcript).to_raw_data(),
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
