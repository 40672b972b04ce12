"""The CLI's parsing, in-process with click's CliRunner: every option documented in README.md
works from its ``YTSB_`` variable, and usage errors exit 2 with one line, before any tor."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from yt_study_buddy import cli
from yt_study_buddy.youtube._courses import CourseRef

README = Path(__file__).resolve().parent.parent / "README.md"
VIDEO = "dQw4w9WgXcQ"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging rewires the package's and stem's loggers; later tests need them as they were."""
    saved = [
        (lg, lg.handlers[:], lg.filters[:], lg.level, lg.propagate)
        for lg in (logging.getLogger("yt_study_buddy"), logging.getLogger("stem"))
    ]
    yield
    for lg, handlers, filters, level, propagate in saved:
        lg.handlers[:], lg.filters[:], lg.level, lg.propagate = handlers, filters, level, propagate


@pytest.fixture
def captured(monkeypatch) -> dict[str, Any]:
    """``run_batch`` replaced: what the command parsed, without any tor."""
    calls: dict[str, Any] = {}

    def fake_run_batch(items: list[Any], options: Any, **kwargs: Any) -> int:
        calls.update(kwargs, items=items, options=options)
        return 0

    monkeypatch.setattr(cli, "run_batch", fake_run_batch)
    return calls


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    environment = {key: None for key in __import__("os").environ if key.startswith("YTSB_")}
    return CliRunner().invoke(cli.main, list(args), env={**environment, **(env or {})}, catch_exceptions=False)


def readme_flags() -> list[str]:
    """The flags of README's options table (first column), e.g. ``--tor-socks``, ``-v``."""
    section = README.read_text().split("Every option can also come from an environment variable")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [flag for row in rows for flag in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", row.split(" | ")[0])]


def test_the_readme_documents_the_ytsb_prefix():
    assert re.search(r"environment variable `YTSB_<NAME>`", README.read_text())


def _ca(tmp: Path) -> str:
    path = tmp / "ca.pem"
    path.write_text("not checked by the parser\n")
    return str(path)


#: Per README flag: the variable's value, and how the parsed value shows in what run_batch got.
SAMPLES: dict[str, tuple[Any, Any] | None] = {
    "--file": (lambda tmp: _file(tmp), lambda c: c["items"] == ["abcdefghijk"]),
    "--parallel": ("1", lambda c: c["options"].workers == 3),
    "--workers": ("5", lambda c: c["options"].workers == 5),  # given with --parallel (EXTRA)
    "--output": (lambda tmp: str(tmp / "out"), lambda c: c["options"].output_dir.name == "out"),
    "--format": ("txt json", lambda c: c["options"].formats == ("txt", "json")),
    "--lang": ("de fr", lambda c: c["options"].languages == ("de", "fr")),
    "--translate": ("es", lambda c: c["options"].translate_to == "es"),
    "--tor-socks": ("127.0.0.1:9999", lambda c: c["shared"].endpoint.socks_port == 9999),
    "--tor-control": (
        "127.0.0.2",
        lambda c: (c["shared"].endpoint.control_host, c["shared"].endpoint.control_port) == ("127.0.0.2", 9051),
    ),
    "--tor-password": ("hunter2", lambda c: c["shared"].endpoint.control_password == "hunter2"),
    "--cooldown-hours": ("2.5", lambda c: c["settings"].cooldown_hours == 2.5),
    "--quarantine-hours": ("12", lambda c: c["settings"].quarantine_hours == 12.0),
    "--rotation": ("pin", lambda c: c["settings"].rotation == "pin"),
    "--max-attempts": ("7", lambda c: c["options"].max_attempts == 7),
    "--ip-check-url": ("https://echo.test/ip", lambda c: c["settings"].ip_check_url == "https://echo.test/ip"),
    "--ca-bundle": (_ca, lambda c: (c["settings"].ca_bundle or "").endswith("ca.pem")),
    "--state-dir": (
        lambda tmp: str(tmp / "state"),
        lambda c: getattr(c["settings"].state_dir, "name", None) == "state",
    ),
    "--ledger": (
        "postgresql://ytsb:s3cret@db.example/ytsb",
        lambda c: str(c["settings"].ledger()) == "postgresql://ytsb:[redacted]@db.example/ytsb",
    ),
    "--force": ("1", lambda c: c["options"].force is True),
    "--no-launch-tor": ("1", lambda c: c["launch"] is False),
    "--json": ("1", lambda c: c["as_json"] is True),
    "--yes-playlist": ("0", lambda c: c["items"] == [VIDEO]),  # the watch URL's video only
    "--no-playlist": ("0", lambda c: c["items"] == [VIDEO]),  # the same variable, YTSB_YES_PLAYLIST
    "--playlist-items": ("-5:", lambda c: c["playlist_items"] == "-5:"),
    "-f": None,
    "-p": None,
    "-w": None,
    "-o": None,
    "-I": None,  # short forms of the above
    "-v": ("2", lambda c: c["shared"].verbose == 2),
    "-q": ("1", lambda c: c["shared"].quiet is True),
}
#: Arguments a flag needs beside its variable to show its effect.
EXTRA = {"--workers": ["--parallel"]}
PLAYLIST_URL = f"https://www.youtube.com/watch?v={VIDEO}&list=PL0123456789abcdef"


def _file(tmp: Path) -> str:
    path = tmp / "urls.txt"
    path.write_text("abcdefghijk\n")
    return str(path)


def test_the_samples_cover_the_readme_table_exactly():
    assert set(readme_flags()) == set(SAMPLES)


def _option(flag: str) -> Any:
    command = cli.main.commands["fetch"]
    return next(p for p in command.params if flag in p.opts or flag in p.secondary_opts)


@pytest.mark.parametrize("flag", [f for f, sample in SAMPLES.items() if sample is not None])
def test_each_documented_option_works_from_its_variable(flag, captured, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default ./notes lands here
    option = _option(flag)
    long = next(o for o in option.opts if o.startswith("--"))
    variable = "YTSB_" + long[2:].replace("-", "_").upper()
    assert option.envvar == variable
    sample = SAMPLES[flag]
    assert sample is not None
    value, check = sample
    value = value(tmp_path) if callable(value) else value
    args = ["fetch"] if flag == "--file" else [PLAYLIST_URL if "playlist" in flag else VIDEO]
    args += EXTRA.get(flag, [])
    done = invoke(*args, env={variable: value})
    assert done.exit_code == 0, done.output
    assert check(captured), captured
    # And without it, the default: the check says something about the variable.
    captured.clear()
    done = invoke(*(args if flag != "--file" else [VIDEO]))
    assert done.exit_code == 0 and not check(captured), captured


def test_the_playlist_url_is_a_course_by_default(captured, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke(PLAYLIST_URL).exit_code == 0
    assert [type(item) for item in captured["items"]] == [CourseRef]


@pytest.mark.parametrize(
    ("flags", "kind"),
    [(("--yes-playlist",), CourseRef), (("--no-playlist",), str), (("--no-playlist", "--yes-playlist"), CourseRef)],
)
def test_yes_and_no_playlist_on_a_watch_url_with_a_list_the_last_one_wins(flags, kind, captured, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke(*flags, "-I", "1-10,15", PLAYLIST_URL).exit_code == 0
    assert [type(item) for item in captured["items"]] == [kind]
    assert captured["playlist_items"] == "1-10,15"  # yt-dlp's -I, passed on as written


def test_doctor_takes_the_shared_options_from_the_environment(monkeypatch):
    seen: dict[str, Any] = {}

    def fake_checks(endpoint: Any, **kwargs: Any) -> list[Any]:
        seen.update(kwargs, endpoint=endpoint)
        return []

    monkeypatch.setattr("yt_study_buddy.app._doctor.run_checks", fake_checks)
    monkeypatch.setattr("yt_study_buddy.app._doctor.format_checks", lambda checks: "ok")
    done = invoke(
        "doctor",
        env={
            "YTSB_TOR_CONTROL": "127.0.0.1:9999",
            "YTSB_IP_CHECK_URL": "https://e.test/",
            "YTSB_STATE_DIR": "/tmp/ytsb-state",
        },
    )
    assert done.exit_code == 0
    assert (seen["endpoint"].control_port, seen["ip_check_url"], str(seen["state_dir"])) == (
        9999,
        "https://e.test/",
        "/tmp/ytsb-state",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Usage:"),
        (("fetch",), "yt-study-buddy: error: no videos given: pass URLs or ids, or --file FILE"),
        (("not a video",), "yt-study-buddy: error: no valid video URLs or ids to fetch"),
        (("--file", "/nonexistent/urls.txt"), "cannot read /nonexistent/urls.txt: No such file or directory"),
        (("--format", "pdf", VIDEO), "Invalid value for '--format': 'pdf' is not one of"),
        (("--parallel", "--workers", "0", VIDEO), "Invalid value for '-w' / '--workers'"),
        (("--rotation", "random", VIDEO), "Invalid value for '--rotation'"),
        (("--tor-socks", "127.0.0.1:99999", VIDEO), "Invalid value for '--tor-socks': bad port"),
        (("--max-attempts", "0", VIDEO), "Invalid value for '--max-attempts'"),
        (("-I", "x", VIDEO), "Invalid value for '-I' / '--playlist-items'"),
        (("demo", "--videos", "9", "--exits", "5"), "--exits 5 is too few for 9 videos with 2 blocked exits"),
        (("doctor", "--bogus"), "No such option '--bogus'"),
    ],
)
def test_usage_errors_exit_2_before_any_tor_contact(args, message, captured):
    done = invoke(*args)
    assert done.exit_code == 2, done.output
    assert message in done.stderr
    assert done.stdout == "" or done.stdout.startswith("Usage:")  # click prints bare help on stdout
    assert captured == {}


def test_output_dir_under_a_file_is_a_usage_error(tmp_path, captured):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = invoke(VIDEO, "--output", str(blocker / "notes"))
    assert done.exit_code == 2
    assert (
        done.stderr == f"yt-study-buddy: error: output directory {blocker / 'notes'} is not writable: Not a directory\n"
    )


def test_a_library_error_is_one_line_and_exit_1(monkeypatch, tmp_path):
    from yt_study_buddy._exceptions import TorUnavailable

    def no_tor(*args: Any, **kwargs: Any) -> int:
        raise TorUnavailable("no tor here")

    monkeypatch.setattr(cli, "run_batch", no_tor)
    done = invoke(VIDEO, "--output", str(tmp_path / "notes"))
    assert (done.exit_code, done.stderr) == (1, "yt-study-buddy: error: no tor here\n")


def test_bad_lines_are_reported_with_their_line_numbers_and_the_rest_goes_on(tmp_path, captured):
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# my lectures\n\n{VIDEO}\nhttps://vimeo.com/123\nhttps://youtu.be/{VIDEO}\nabc\n")
    done = invoke("--file", str(urls), "--output", str(tmp_path / "notes"))
    assert done.stderr.splitlines()[:3] == [
        f"yt-study-buddy: skipping {urls}:4: not a YouTube URL: 'https://vimeo.com/123'",
        f"yt-study-buddy: skipping {urls}:6: not a video id: 'abc' has 3 characters, video ids have 11",
        "1 duplicate video(s) will be fetched once",
    ]
    assert captured["items"] == [VIDEO] and done.exit_code == 1  # the bad lines make the run fail
