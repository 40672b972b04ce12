from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from yt_study_buddy._fs import write_atomic
from yt_study_buddy.notes._files import MAX_STEM_BYTES, note_stem

ID = "dQw4w9WgXcQ"
WINDOWS_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])", re.IGNORECASE)


def _assert_portable(stem: str) -> None:
    name = stem + ".md"
    assert not WINDOWS_FORBIDDEN.search(name), name
    assert stem == stem.strip(" .") or stem.endswith("]"), stem
    assert not WINDOWS_RESERVED.fullmatch(name.split(".", 1)[0].rstrip()), name
    assert len(stem.encode()) <= MAX_STEM_BYTES
    assert not stem.startswith(".")


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Linear Algebra, Lecture 1", f"Linear Algebra, Lecture 1 [{ID}]"),
        ("Lecture 1: Vectors", f"Lecture 1 - Vectors [{ID}]"),
        ("AC/DC \\ live | 1979", f"AC-DC - live - 1979 [{ID}]"),
        ('He said "why?" <b>*now*</b>', f"He said 'why' b now -b [{ID}]"),
        ("  tabs\tand\nnewlines\r\n  ", f"tabs and newlines [{ID}]"),
        ("bell\x07 null\x00 esc\x1b", f"bell null esc [{ID}]"),
        ("evil\u202egnp.exe", f"evilgnp.exe [{ID}]"),  # bidi override removed
        ("zero\u200bwidth", f"zerowidth [{ID}]"),
        ("line\u2028sep", f"line sep [{ID}]"),
        ("...hidden", f"hidden [{ID}]"),
        ("trailing dots... ", f"trailing dots [{ID}]"),
        ("Cafe\u0301", f"Café [{ID}]"),  # NFC, as macOS would otherwise differ
        ("数学の講義 第1回", f"数学の講義 第1回 [{ID}]"),
        ("CON", f"_CON [{ID}]"),
        ("nul.tar.gz", f"_nul.tar.gz [{ID}]"),
        ("com1 ", f"_com1 [{ID}]"),
        ("LPT¹", f"_LPT¹ [{ID}]"),
        ("CONSOLE", f"CONSOLE [{ID}]"),
        ("Reply to [aaaaaaaaaaa]", f"Reply to [aaaaaaaaaaa] [{ID}]"),
    ],
)
def test_note_stem(title: str, expected: str) -> None:
    stem = note_stem(title, ID)
    assert stem == expected
    _assert_portable(stem)


@pytest.mark.parametrize("title", [None, "", "   ", "???", "...", "\x00\x01", "\u202e", "<>:*"])
def test_note_stem_falls_back_to_the_id(title: str | None) -> None:
    assert note_stem(title, ID) == ID


@pytest.mark.parametrize(("char", "size"), [("a", 1), ("é", 2), ("講", 3), ("😀", 4)])
def test_note_stem_limits_bytes_without_cutting_a_character(char: str, size: int) -> None:
    stem = note_stem(char * 200, ID)
    _assert_portable(stem)
    title = stem.removesuffix(f" [{ID}]")
    assert set(title) == {char}
    budget = MAX_STEM_BYTES - len(f" [{ID}]")
    assert budget - size < len(title.encode()) <= budget


def test_note_stem_cut_does_not_leave_a_trailing_space_or_dot() -> None:
    budget = MAX_STEM_BYTES - len(f" [{ID}]")
    stem = note_stem("x" * (budget - 1) + " tail", ID)
    assert stem == "x" * (budget - 1) + f" [{ID}]"


def test_same_title_different_videos_get_different_names() -> None:
    assert note_stem("Intro", "aaaaaaaaaaa") != note_stem("Intro", "bbbbbbbbbbb")
    long = "L" * 300
    assert note_stem(long, "aaaaaaaaaaa") != note_stem(long, "bbbbbbbbbbb")


def test_stems_are_real_file_names(tmp_path: Path) -> None:
    for title in ["a/b", "../../etc/passwd", "C:\\Windows", "x" * 500, "\x00", "CON"]:
        path = tmp_path / (note_stem(title, ID) + ".md")
        write_atomic(path, "ok")
        assert path.parent == tmp_path and path.read_text() == "ok"


def test_write_atomic_writes_utf8_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "n.md"
    write_atomic(path, "line 1\r\nCafé 講 😀\n")
    assert path.read_bytes() == "line 1\r\nCafé 講 😀\n".encode()
    write_atomic(path, "replaced")
    assert path.read_text() == "replaced"
    assert os.listdir(tmp_path) == ["n.md"]


def test_write_atomic_respects_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "n.md", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "n.md").stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_the_old_note_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "n.md"
    write_atomic(path, "old")

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["n.md"]


def test_write_atomic_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "n.md", "x")
    assert os.listdir(tmp_path) == []
