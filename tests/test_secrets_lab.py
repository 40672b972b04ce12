"""No control secret in any output: the password and the auth cookie (and what SAFECOOKIE derives
from it) never reach stdout, stderr, the run log, notes, the state dir or any file under HOME,
at any verbosity, for fetch, doctor and demo, with a right or a wrong password.

stem traces every control command at -vv; the trace must stay, with its secrets redacted.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

import pytest
import stem.socket

from yt_study_buddy.tor._redaction import REDACTED, redact

#: Distinctive enough that a hit is a leak, not a coincidence; plain, so no escaping hides a leak.
SECRET_PASSWORD = "Sekrit-Q7xZ-ctrl-pw-4J9w"
WRONG_PASSWORD = "Wr0ng-K3vN-ctrl-pw-8Rq2"
VERBOSITIES = [(), ("-v",), ("-vv",), ("-q",)]
#: Protocol text that carries a secret in the clear: an AUTHENTICATE argument (password or
#: cookie hex), SAFECOOKIE's client nonce, tor's server hash and nonce.
CLEAR_SECRET_SYNTAX = re.compile(
    rb'AUTHENTICATE[ \t]+["0-9A-Fa-f]|AUTHCHALLENGE[ \t]+SAFECOOKIE[ \t]+[0-9A-Fa-f]|SERVER(?:HASH|NONCE)=[0-9A-Fa-f]'
)


@dataclass
class Secrets:
    """What must never appear: each as bytes, in every form it could be written in."""

    forms: dict[str, bytes]

    @classmethod
    def of(cls, passwords: list[str], cookies: list[bytes]) -> Secrets:
        forms = {f"password {p!r}": p.encode() for p in passwords}
        for n, cookie in enumerate(cookies):
            assert len(cookie) == 32, "tor's auth cookie is 32 bytes"
            forms |= {
                f"cookie {n} raw": cookie,
                f"cookie {n} hex": cookie.hex().encode(),
                f"cookie {n} HEX": cookie.hex().upper().encode(),
                f"cookie {n} base64": base64.b64encode(cookie),
            }
        return cls(forms)

    def leaks(self, where: str, data: bytes) -> list[str]:
        found = [f"{what} in {where}" for what, form in self.forms.items() if form in data]
        found += [f"{m.group()!r}... in {where}" for m in CLEAR_SECRET_SYNTAX.finditer(data)]
        return found


def files_under(*roots: Path, skip: AbstractSet[Path] = frozenset()) -> Iterator[Path]:
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path not in skip:
                yield path


def assert_no_leaks(
    secrets: Secrets, streams: dict[str, bytes], roots: list[Path], skip: AbstractSet[Path] = frozenset()
) -> int:
    """Every stream and every file under ``roots``; returns how many files were read."""
    leaks = [hit for name, data in streams.items() for hit in secrets.leaks(name, data)]
    files = list(files_under(*roots, skip=skip))
    leaks += [hit for path in files for hit in secrets.leaks(str(path), path.read_bytes())]
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
    return len(files)


def sandbox_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No YTSB_* from the caller; HOME, the XDG dirs and TMPDIR inside ``tmp_path``, to be scanned."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("YTSB_")}
    dirs = {
        "HOME": "home",
        "XDG_CACHE_HOME": "home/.cache",
        "XDG_STATE_HOME": "home/.local/state",
        "XDG_DATA_HOME": "home/.local/share",
        "XDG_CONFIG_HOME": "home/.config",
        "TMPDIR": "tmp",
    }
    for key, sub in dirs.items():
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        env[key] = str(tmp_path / sub)
    return {**env, **extra}


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "yt_study_buddy", *args], env=env, capture_output=True, timeout=timeout
    )


def hash_password(password: str) -> str:
    done = subprocess.run(
        ["tor", "--hash-password", password, "--quiet"], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def secret_password(lab) -> Iterator[str]:
    """The session lab accepts ``SECRET_PASSWORD`` too while this module runs (tor takes several
    HashedControlPassword lines); the lab's own password is left as it was."""
    with lab.controller() as controller:
        before = controller.get_conf("HashedControlPassword", multiple=True)
        controller.set_conf("HashedControlPassword", [*before, hash_password(SECRET_PASSWORD)])
        try:
            yield SECRET_PASSWORD
        finally:
            controller.set_conf("HashedControlPassword", before)


@pytest.fixture
def lab_secrets(lab, secret_password) -> Secrets:
    return Secrets.of([secret_password, WRONG_PASSWORD], [lab.cookie_path.read_bytes()])


def lab_args(fake_youtube, password: str) -> list[str]:
    return [
        "--tor-control",
        "127.0.0.1:9051",
        "--tor-socks",
        "127.0.0.1:9050",
        "--ca-bundle",
        str(fake_youtube.ca_path),
        "--tor-password",
        password,
    ]


def assert_trace_kept(stderr: bytes) -> None:
    """-vv still shows stem's conversation with tor, authentication included, redacted."""
    text = stderr.decode()
    assert "stem: Sent to tor: PROTOCOLINFO 1" in text
    assert f"stem: Sent to tor: AUTHENTICATE {REDACTED}" in text
    assert "stem: Received from tor: 250 OK" in text


# -- fetch and doctor on the session lab -------------------------------------------------------


@pytest.mark.lab
@pytest.mark.parametrize("verbosity", VERBOSITIES, ids=lambda v: "".join(v) or "default")
@pytest.mark.parametrize("right", [True, False], ids=["right-password", "wrong-password"])
def test_fetch_shows_and_stores_no_secret(lab, fake_youtube, tmp_path, lab_secrets, secret_password, right, verbosity):
    video = "secretVideo"
    output, state = tmp_path / "notes", tmp_path / "state"
    done = run(
        [
            video,
            *lab_args(fake_youtube, secret_password if right else WRONG_PASSWORD),
            "--json",
            "--output",
            str(output),
            "--state-dir",
            str(state),
            "--no-launch-tor",
            *verbosity,
        ],
        sandbox_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr.decode()
    assert (output / ".yt-study-buddy" / "runs.jsonl").is_file()
    assert any(path.name.endswith(f"[{video}].md") for path in output.glob("*.md"))
    assert list(state.iterdir()), "the exit ledger is in the state dir"
    assert ("refused the control password" in done.stderr.decode()) is (not right)  # a warning: even with -q
    assert assert_no_leaks(lab_secrets, {"stdout": done.stdout, "stderr": done.stderr}, [tmp_path]) >= 3
    if verbosity == ("-vv",):
        assert_trace_kept(done.stderr)
        # tor's STREAM and CIRC events quote each session's SOCKS password (its isolation token).
        socks_passwords = re.findall(r'SOCKS_PASSWORD="([^"]*)"', done.stderr.decode())
        assert socks_passwords and set(socks_passwords) == {REDACTED}


@pytest.mark.lab
@pytest.mark.parametrize(
    ("right", "verbosity"),
    [(True, v) for v in VERBOSITIES] + [(False, ("-vv",))],
    ids=[f"right-password-{''.join(v) or 'default'}" for v in VERBOSITIES] + ["wrong-password--vv"],
)
def test_doctor_shows_and_stores_no_secret(lab, fake_youtube, tmp_path, lab_secrets, secret_password, right, verbosity):
    # Each run waits up to 10 s for NEWNYM; a wrong password changes what is sent, not how it is shown.
    done = run(
        ["doctor", *lab_args(fake_youtube, secret_password if right else WRONG_PASSWORD), *verbosity],
        sandbox_env(tmp_path),
    )
    report = done.stdout.decode()
    assert done.returncode == 0, report + done.stderr.decode()
    assert ("✓ control authentication  password, tor" in report) is right
    assert ("the given control password is wrong" in report) is (not right)
    assert_no_leaks(lab_secrets, {"stdout": done.stdout, "stderr": done.stderr}, [tmp_path])
    if verbosity == ("-vv",):
        assert_trace_kept(done.stderr)


@pytest.mark.lab
def test_fetch_on_a_terminal_shows_no_secret(lab, fake_youtube, tmp_path, lab_secrets, secret_password):
    """On a terminal (the live bar, and rich's handler once it is up): nothing on the screen either."""
    controller, terminal = pty.openpty()
    env = sandbox_env(tmp_path, COLUMNS="1000")  # no wrapping that could split a secret
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "yt_study_buddy",
            "secretTTY01",
            "-vv",
            *lab_args(fake_youtube, secret_password),
            "--output",
            str(tmp_path / "notes"),
            "--state-dir",
            str(tmp_path / "state"),
            "--no-launch-tor",
        ],
        env=env,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if not select.select([controller], [], [], 1.0)[0]:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the program closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=10) == 0, output.decode(errors="replace")
    finally:
        process.kill()
        os.close(controller)
    screen = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", output)
    assert b"Received from tor" in screen and b"done: fetched 1" in screen
    assert_no_leaks(lab_secrets, {"terminal": output, "terminal text": screen}, [tmp_path])


# -- tors the run starts itself: the launched one, the demo's lab --------------------------------


@dataclass
class Watched:
    streams: dict[str, bytes]
    returncode: int
    cookie: bytes | None
    captured: set[Path]


def run_watching_cookie(
    argv: list[str], env: dict[str, str], tmp_path: Path, cookie_glob: str, timeout: float = 300
) -> Watched:
    """Run ``argv``, reading the auth cookie of the tor it starts while it runs: tor deletes its
    cookie when it stops. Output goes to files (scanned as streams, not as files the run wrote)."""
    (tmp_path / "captured").mkdir()
    out, err = tmp_path / "captured" / "stdout", tmp_path / "captured" / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr)
    cookie = None
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None:
            assert time.monotonic() < deadline, f"{argv} did not finish"
            if cookie is None:
                cookie = next(
                    (path.read_bytes() for path in tmp_path.glob(cookie_glob) if path.stat().st_size == 32), None
                )
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    return Watched({"stdout": out.read_bytes(), "stderr": err.read_bytes()}, process.returncode, cookie, {out, err})


@pytest.mark.lab
def test_a_launched_tor_s_cookie_is_not_shown(lab, fake_youtube, tmp_path):
    # The only tor on PATH makes the launched tor a client of the lab (as in test_cli_lab).
    bin_dir = tmp_path / "bin"
    lab.tor_wrapper(bin_dir)
    argv = [
        sys.executable,
        "-m",
        "yt_study_buddy",
        "secretLNCH1",
        "-vv",
        "--tor-control",
        "127.0.0.1:9371",
        "--tor-socks",
        "127.0.0.1:9370",
        "--ca-bundle",
        str(fake_youtube.ca_path),
        "--output",
        str(tmp_path / "notes"),
        "--state-dir",
        str(tmp_path / "state"),
    ]
    # tor's data dir is in the user cache dir, so under the sandbox HOME.
    done = run_watching_cookie(
        argv, sandbox_env(tmp_path, PATH=str(bin_dir)), tmp_path, "home/.cache/yt-study-buddy/tor/control_auth_cookie"
    )
    assert done.returncode == 0, done.streams["stderr"].decode()
    assert done.cookie is not None, "the launched tor's cookie was never seen"
    assert b"launched tor (pid" in done.streams["stderr"]
    assert_no_leaks(Secrets.of([], [done.cookie]), done.streams, [tmp_path], skip=done.captured)
    assert_trace_kept(done.streams["stderr"])


@pytest.mark.lab
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root for unshare --net")
def test_demo_shows_and_stores_no_secret(tmp_path):
    """The demo's lab has no control password (cookie only): its cookie, read while it runs."""
    # Its own lab on the default ports: a fresh namespace keeps it off the session lab.
    fresh = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "jail"]
    argv = [
        *fresh,
        sys.executable,
        "-m",
        "yt_study_buddy",
        "demo",
        "--videos",
        "2",
        "--output",
        str(tmp_path / "notes"),
        "-vv",
    ]
    # The lab's working dir goes to TMPDIR, the sandbox's tmp.
    done = run_watching_cookie(argv, sandbox_env(tmp_path), tmp_path, "tmp/torlab-*/client/control_auth_cookie")
    assert done.returncode == 0, done.streams["stderr"].decode()
    assert done.cookie is not None, "the demo's lab cookie was never seen"
    assert len(list((tmp_path / "notes").glob("*.md"))) == 2
    assert_no_leaks(Secrets.of([], [done.cookie]), done.streams, [tmp_path], skip=done.captured)
    assert_trace_kept(done.streams["stderr"])


# -- no lab needed ------------------------------------------------------------------------------


def test_help_never_shows_the_password_from_the_environment(tmp_path):
    env = sandbox_env(tmp_path, YTSB_TOR_PASSWORD=SECRET_PASSWORD)
    secrets = Secrets.of([SECRET_PASSWORD], [])
    for command in (["fetch"], ["doctor"], []):
        done = run([*command, "--help"], env, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        assert (b"--tor-password" in done.stdout) is bool(command)
        assert_no_leaks(secrets, {f"{command} --help": done.stdout + done.stderr}, [])


@pytest.mark.parametrize("password", ["plain-pw-1", 'with "quotes" and \\ and spaces', "two\nlines"])
def test_stem_s_trace_is_redacted_for_any_handler(password, caplog):
    """The real stem send path and a handler of anyone's (here pytest's): the library puts the filter
    on stem's logger, so no handler sees the argument, even a password that makes a multi-line command."""
    import yt_study_buddy.tor._control  # noqa: F401  (the library's import installs it)

    caplog.set_level(5, logger="stem")  # stem's TRACE
    ours_handler = logging.StreamHandler(io.StringIO())  # stem traces only when a handler on its logger listens
    logging.getLogger("stem").addHandler(ours_handler)
    try:
        exchange(password)
    finally:
        logging.getLogger("stem").removeHandler(ours_handler)
    for text in (caplog.text, ours_handler.stream.getvalue()):
        assert f"Sent to tor: AUTHENTICATE {REDACTED}" in text or f"+AUTHENTICATE {REDACTED}" in text
        assert f"AUTHCHALLENGE SAFECOOKIE {REDACTED}" in text
        assert f"250 AUTHCHALLENGE SERVERHASH={REDACTED} SERVERNONCE={REDACTED}" in text
        for secret in [*password.split("\n"), "ab" * 32, "CD" * 32, "EF" * 32]:
            assert secret not in text
    logging.getLogger("stem").log(5, "Sent to tor: AUTHENTICATE %s", '"args-pw-1"')  # %-args: formatted first
    assert "args-pw-1" not in caplog.text and caplog.records[-1].getMessage().endswith(REDACTED)


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        (
            '650 STREAM 12 NEW 0 1.2.3.4:443 SOCKS_USERNAME="ytsb-1" SOCKS_PASSWORD="tok\\"en" PURPOSE=USER',
            f'650 STREAM 12 NEW 0 1.2.3.4:443 SOCKS_USERNAME="ytsb-1" SOCKS_PASSWORD="{REDACTED}" PURPOSE=USER',
        ),
        (
            "proxy socks5h://ytsb-1:tok3n@127.0.0.1:9050 refused",
            f"proxy socks5h://ytsb-1:{REDACTED}@127.0.0.1:9050 refused",
        ),
        ("postgresql://me:pw@db/x", f"postgresql://me:{REDACTED}@db/x"),
        ("https://www.youtube.com/watch?v=abc&t=1s", "https://www.youtube.com/watch?v=abc&t=1s"),
    ],
)
def test_socks_and_url_passwords_are_redacted(line, redacted):
    assert redact(line) == redacted


def exchange(password: str) -> None:
    """An AUTHENTICATE, an AUTHCHALLENGE and tor's reply to it, through stem's own send and receive."""
    ours, theirs = socket.socketpair()
    with ours, theirs, ours.makefile("rwb") as control_file:
        stem.socket.send_message(control_file, f'AUTHENTICATE "{password}"')
        stem.socket.send_message(control_file, "AUTHCHALLENGE SAFECOOKIE " + "ab" * 32)
        theirs.sendall(b"250 AUTHCHALLENGE SERVERHASH=" + b"CD" * 32 + b" SERVERNONCE=" + b"EF" * 32 + b"\r\n")
        stem.socket.recv_message(control_file)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging rewires the package's and stem's loggers; later tests need them as they were."""
    saved = [
        (lg, lg.handlers[:], lg.filters[:], lg.level, lg.propagate)
        for lg in (logging.getLogger("yt_study_buddy"), logging.getLogger("stem"))
    ]
    yield
    for lg, handlers, filters, level, propagate in saved:
        lg.handlers[:], lg.filters[:], lg.level, lg.propagate = handlers, filters, level, propagate


@pytest.mark.parametrize("rich", [False, True], ids=["plain", "rich"])
@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_the_cli_handler_redacts_every_logger_it_serves(verbose, rich, capsys, restore_logging):
    from rich.console import Console

    from yt_study_buddy.cli import setup_logging

    setup_logging(verbose, False, Console(file=sys.stderr, width=1000) if rich else None)
    logging.getLogger("yt_study_buddy.anywhere").warning("tor said %s", "SERVERHASH=" + "12" * 32)
    logging.getLogger("yt_study_buddy").warning("sent AUTHENTICATE %s", "0f" * 32)
    err = capsys.readouterr().err
    assert f"tor said SERVERHASH={REDACTED}" in err and f"sent AUTHENTICATE {REDACTED}" in err
    assert "12" * 32 not in err and "0f" * 32 not in err
