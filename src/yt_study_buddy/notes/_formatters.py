"""Render a `Transcript` as a Markdown study note, plain text, JSON, SRT or WebVTT.

Subtitle formats come from youtube-transcript-api and keep every cue as fetched. The reading
formats (md, txt) collapse whitespace, drop cue-only snippets like ``[Music]`` and group the rest
into paragraphs; Markdown paragraphs start with a link to that second of the video. A video with
chapters gets one section per chapter, and no paragraph straddles two.

A Markdown note opens with YAML front matter (see ``_front_matter``) for Obsidian, its Dataview plugin and scripts: title, channel, url, video_id, duration (whole
seconds), language (its code), chapters (title, start in whole seconds), fetched (ISO 8601 UTC),
and, for a video fetched as part of a course, ``playlist`` (its title, id and kind: ``playlist``,
or ``channel`` for a channel's uploads) and the video's ``position`` in it.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from youtube_transcript_api import FetchedTranscript, FetchedTranscriptSnippet
from youtube_transcript_api.formatters import SRTFormatter, WebVTTFormatter

from ..youtube._chapters import Chapter
from ..youtube._courses import Course, CourseEntry, CourseKind
from ..youtube._transcripts import Snippet, Transcript
from ..youtube._video_ids import watch_url
from ._front_matter import dump_front_matter

FORMATS = ("md", "txt", "json", "srt", "vtt")

#: A paragraph may end at a sentence end once it is this long (seconds)...
PARAGRAPH_MIN_SECONDS = 45.0
#: ...and ends regardless once it is this long (auto captions often have no punctuation).
PARAGRAPH_MAX_SECONDS = 60.0

_WHITESPACE = re.compile(r"\s+")
_CUE_ONLY = re.compile(r"(?:\s|\[[^\]]*\]|[♪♫♬])+")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>])")
#: The section of a chaptered note that holds what is said before the first chapter.
BEFORE_CHAPTERS = "Before the first chapter"


@dataclass(frozen=True)
class CourseContext:
    """The course a video was fetched as part of, for the note's front matter: ``playlist`` (its
    title, id and kind) and the video's 1-based ``position`` in it."""

    title: str
    id: str
    position: int
    kind: CourseKind = CourseKind.PLAYLIST

    @classmethod
    def of(cls, course: Course, entry: CourseEntry) -> CourseContext:
        """The context of one of ``course``'s entries."""
        return cls(title=course.title, id=course.id, position=entry.position, kind=course.kind)


@dataclass(frozen=True)
class Provenance:
    """Where and when a transcript was fetched, printed in notes so a reader can judge it.

    ``course``: the course the video was fetched for, if any (see `CourseContext`)."""

    exit_ip: str | None
    fetched_at: datetime
    attempts: int = 1
    course: CourseContext | None = None


def render(transcript: Transcript, fmt: str, *, provenance: Provenance) -> str:
    """Render ``transcript`` in one of `FORMATS`."""
    if fmt == "md":
        return _markdown(transcript, provenance)
    if fmt == "txt":
        return _text(transcript)
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


def _sections(transcript: Transcript) -> list[tuple[Chapter | None, tuple[Snippet, ...]]]:
    """The snippets by chapter, each in the chapter it starts in: first those before the first
    chapter (under None), then one entry per chapter. Without chapters: one entry, None."""
    starts = [chapter.start for chapter in transcript.chapters]
    groups: list[list[Snippet]] = [[] for _ in range(len(starts) + 1)]
    for snippet in transcript.snippets:
        groups[bisect.bisect_right(starts, snippet.start)].append(snippet)
    return list(zip((None, *transcript.chapters), map(tuple, groups), strict=True))


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


def _one_line(text: str) -> str:
    """Every run of whitespace (line breaks too) as one space: titles go on one line."""
    return " ".join(text.split())


def _heading(text: str) -> str:
    """Heading text: one line, escaped, ``#`` too (a trailing one would close the heading)."""
    return _md_escape(_one_line(text)).replace("#", "\\#")


def _course_fields(course: CourseContext | None) -> dict[str, Any]:
    """``{"playlist": {"title", "id", "kind"}, "position": n}``, or nothing."""
    if course is None:
        return {}
    playlist = {"title": _one_line(course.title), "id": course.id, "kind": course.kind.value}
    return {"playlist": playlist, "position": course.position}


def _chapter_fields(transcript: Transcript) -> list[dict[str, Any]]:
    """The chapters as ``{"title", "start"}``, the start in whole seconds (what the links say)."""
    return [{"title": chapter.title, "start": int(chapter.start)} for chapter in transcript.chapters]


def _front_matter(transcript: Transcript, provenance: Provenance) -> str:
    """The note's YAML front matter, ``---`` lines included (unknown title or channel: null)."""
    fields: dict[str, Any] = {
        "title": _one_line(transcript.title) if transcript.title else None,
        "channel": _one_line(transcript.channel) if transcript.channel else None,
        "url": watch_url(transcript.video_id),
        "video_id": transcript.video_id,
        "duration": int(transcript.duration),  # the whole seconds the note shows
        "language": transcript.language_code,
        "chapters": _chapter_fields(transcript),
        "fetched": provenance.fetched_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **_course_fields(provenance.course),
    }
    return dump_front_matter(fields)


def _markdown(transcript: Transcript, provenance: Provenance) -> str:
    video_id = transcript.video_id
    lines = [_front_matter(transcript, provenance), f"# {_heading(transcript.title or video_id)}", ""]
    if transcript.channel:
        lines.append(f"- **Channel:** {_md_escape(transcript.channel)}")
    lines += [
        f"- **Video:** <{watch_url(video_id)}>",
        f"- **Language:** {_md_escape(_language_line(transcript))}",
        f"- **Duration:** {clock(transcript.duration)}",
        f"- **Fetched:** {_provenance_line(provenance)}",
        "",
    ]
    if transcript.chapters:
        lines += ["## Chapters", ""]
        lines += [f"- {_time_link(video_id, c.start)} {_md_escape(c.title)}" for c in transcript.chapters]
        lines.append("")
    for chapter, snippets in _sections(transcript):
        paragraphs = list(_paragraphs(snippets))
        if chapter is None and not paragraphs and transcript.chapters:
            continue  # nothing said before the first chapter
        title = "Transcript" if not transcript.chapters else BEFORE_CHAPTERS if chapter is None else chapter.title
        lines += [f"## {_heading(title)}", ""]
        for start, text in paragraphs:
            lines += [f"{_time_link(video_id, start)} {_md_escape(text)}", ""]
    return "\n".join(lines)


def _time_link(video_id: str, seconds: float) -> str:
    """``[mm:ss](https://www.youtube.com/watch?v=ID&t=Ns)``."""
    return f"[{clock(seconds)}]({watch_url(video_id, seconds)})"


def _text(transcript: Transcript) -> str:
    """Paragraphs separated by blank lines; each chapter opens with a ``[mm:ss] Title`` line."""
    blocks: list[str] = []
    for chapter, snippets in _sections(transcript):
        if chapter is not None:
            blocks.append(f"[{clock(chapter.start)}] {chapter.title}")
        blocks += [text for _, text in _paragraphs(snippets)]
    return "\n\n".join(blocks) + "\n"


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
        "chapters": _chapter_fields(transcript),
        **_course_fields(provenance.course),
        "provenance": {
            "exit_ip": provenance.exit_ip,
            "fetched_at": provenance.fetched_at.astimezone(UTC).isoformat(),
            "attempts": provenance.attempts,
        },
        "snippets": _fetched(transcript).to_raw_data(),
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
