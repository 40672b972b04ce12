"""doctor: real checks against the private lab network and the fake YouTube."""

from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
import stem

from yt_study_buddy.app import _doctor as doctor
from yt_study_buddy.app._doctor import BLOCKED, Check, format_checks, reset_stream_attachment, run_checks
from yt_study_buddy.testing.fake_youtube import Behavior
from yt_study_buddy.tor import check_exit_ip
from yt_study_buddy.tor._endpoint import TorEndpoint
from yt_study_buddy.tor._launcher import launch_tor

IP_CHECK_URL = "https://check.torproject.org/api/ip"
NAMES = [
    doctor.CONTROL_PORT,
    doctor.AUTHENTICATION,
    doctor.BOOTSTRAP,
    doctor.NEWNYM,
    doctor.STREAM_ATTACHMENT,
    doctor.CONFLUX,
    doctor.SOCKS_PORT,
    doctor.EXIT_ECHO,
    doctor.WATCH_PAGE,
]


def by_name(checks: list[Check]) -> dict[str, Check]:
    assert [check.name for check in checks] == NAMES
    return {check.name: check for check in checks}


def test_format_checks_marks_passes_failures_and_skips():
    text = format_checks(
        [
            Check("control port reachable", True, "127.0.0.1:9051"),
            Check("control authentication", False, "refused", "pass --tor-password"),
            Check("tor bootstrapped", False, "skipped: needs control authentication", skipped=True),
        ]
    )
    assert text == (
        "✓ control port reachable  127.0.0.1:9051\n"
        "✗ control authentication  refused\n"
        "    fix: pass --tor-password\n"
        "- tor bootstrapped        skipped: needs control authentication"
    )


def test_nothing_listening_fails_first_and_skips_the_rest():
    # Bound but not listening: connecting is refused, and no other program can take the port.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        checks = by_name(run_checks(TorEndpoint(socks_port=port, control_port=port), ip_check_url=IP_CHECK_URL))
    first = checks[doctor.CONTROL_PORT]
    assert not first.ok and not first.skipped
    assert first.detail == f"nothing answers on 127.0.0.1:{port} (Connection refused)"
    assert first.fix is not None and f"ControlPort {port}" in first.fix and "--tor-control" in first.fix
    assert checks[doctor.AUTHENTICATION].detail == "skipped: needs control port reachable"
    assert checks[doctor.EXIT_ECHO].detail == "skipped: needs tor bootstrapped"
    assert checks[doctor.WATCH_PAGE].detail == "skipped: needs exit echo"
    assert all(check.skipped and not check.ok for check in list(checks.values())[1:])


@contextmanager
def conflux_off(lab) -> Iterator[None]:
    """The session lab's client without conflux, the one cause of a connection leaving from
    another exit than its username's circuit (measured 0 of 150 without it)."""
    controller = lab.controller()
    try:
        controller.set_conf("ConfluxEnabled", "0")
        for circuit in controller.get_circuits():  # the pre-built linked sets would still be used
            if circuit.purpose and circuit.purpose.startswith("CONFLUX"):
                with suppress(stem.InvalidRequest):  # closed meanwhile
                    controller.close_circuit(circuit.id)
        yield
    finally:
        controller.reset_conf("ConfluxEnabled")
        controller.close()


@pytest.mark.lab
def test_all_checks_pass_on_the_lab(lab, fake_youtube):
    with conflux_off(lab):
        checks = by_name(run_checks(lab.endpoint, ip_check_url=IP_CHECK_URL, ca_bundle=str(fake_youtube.ca_path)))
    assert all(check.ok for check in checks.values()), format_checks(list(checks.values()))
    assert checks[doctor.CONTROL_PORT].detail == f"127.0.0.1:{lab.endpoint.control_port}"
    assert checks[doctor.AUTHENTICATION].detail.startswith("password, tor ")
    assert checks[doctor.BOOTSTRAP].detail == "100 % (Done)"
    exit_ip = checks[doctor.EXIT_ECHO].detail.removeprefix("exit IP ")
    assert exit_ip in lab.exit_ips
    served = [(entry.client_ip, entry.path.split("?")[0]) for entry in fake_youtube.requests]
    assert served == [(exit_ip, "/api/ip"), (exit_ip, "/watch")]  # one circuit, one exit
    assert checks[doctor.WATCH_PAGE].detail == f"HTTP 200 with INNERTUBE_API_KEY via exit {exit_ip}"


@pytest.mark.lab
def test_watch_page_names_the_exit_tor_moved_it_to(lab, fake_youtube, monkeypatch):
    """Close the echo's circuit and bar its exit before the watch page: its new connection gets
    a circuit through another exit, and the report must name that one, not the echoed one."""
    controller = lab.controller()
    echo = check_exit_ip
    echoed: list[str] = []

    def echo_then_move_off_its_exit(session, url):
        ip = echo(session, url)
        echoed.append(ip)
        [fingerprint] = [fp for fp, exit_ip in lab.exit_fingerprints.items() if exit_ip == ip]
        controller.set_conf("ExcludeExitNodes", f"${fingerprint}")
        for circuit in controller.get_circuits():
            if circuit.socks_username == session.socks_username:
                controller.close_circuit(circuit.id)
        session.drop_connections()
        return ip

    monkeypatch.setattr(doctor, "check_exit_ip", echo_then_move_off_its_exit)
    try:
        checks = by_name(run_checks(lab.endpoint, ip_check_url=IP_CHECK_URL, ca_bundle=str(fake_youtube.ca_path)))
    finally:
        controller.reset_conf("ExcludeExitNodes")
        controller.close()
    exit_ip = checks[doctor.EXIT_ECHO].detail.removeprefix("exit IP ")
    assert echoed == [exit_ip]
    watch_exit = [entry.client_ip for entry in fake_youtube.requests if entry.path.startswith("/watch")]
    assert len(watch_exit) == 1 and watch_exit[0] in lab.exit_ips and watch_exit[0] != exit_ip
    assert checks[doctor.WATCH_PAGE].detail == (
        f"HTTP 200 with INNERTUBE_API_KEY via exit {watch_exit[0]} (tor moved the connection off the echoed exit {exit_ip})"
    )


@pytest.mark.lab
def test_recaptcha_is_reported_as_a_blocked_exit(lab, fake_youtube):
    fake_youtube.script(Behavior.RECAPTCHA)
    checks = by_name(run_checks(lab.endpoint, ip_check_url=IP_CHECK_URL, ca_bundle=str(fake_youtube.ca_path)))
    watch = checks[doctor.WATCH_PAGE]
    assert not watch.ok and not watch.skipped
    assert watch.detail.startswith(f"{BLOCKED}: recaptcha for exit 127.0.0.")
    assert all(check.ok for name, check in checks.items() if name != doctor.WATCH_PAGE)
    assert "\n✗ YouTube watch page      this exit is blocked by YouTube" in format_checks(list(checks.values()))


@pytest.mark.lab
def test_leftover_stream_attachment_is_reported_and_fixed(lab, fake_youtube):
    owner = lab.controller()
    try:
        owner.set_conf("__LeaveStreamsUnattached", "1")
        checks = by_name(run_checks(lab.endpoint, ip_check_url=IP_CHECK_URL, ca_bundle=str(fake_youtube.ca_path)))
        attachment = checks[doctor.STREAM_ATTACHMENT]
        assert not attachment.ok and attachment.detail.startswith("__LeaveStreamsUnattached is 1")
        assert attachment.fix is not None and "yt-study-buddy doctor --fix" in attachment.fix
        assert checks[doctor.EXIT_ECHO].detail == "skipped: needs stream attachment"
        assert owner.get_conf("__LeaveStreamsUnattached") == "1"  # reporting changes nothing

        fixed = by_name(
            run_checks(lab.endpoint, ip_check_url=IP_CHECK_URL, ca_bundle=str(fake_youtube.ca_path), fix=True)
        )
        assert fixed[doctor.STREAM_ATTACHMENT].ok
        assert fixed[doctor.STREAM_ATTACHMENT].detail == "__LeaveStreamsUnattached was 1: reset (--fix)"
        assert fixed[doctor.EXIT_ECHO].ok and fixed[doctor.WATCH_PAGE].ok
        assert owner.get_conf("__LeaveStreamsUnattached") == "0"
        assert reset_stream_attachment(lab.endpoint) is False
    finally:
        owner.reset_conf("__LeaveStreamsUnattached")
        owner.close()


@pytest.mark.lab
def test_a_wrong_password_is_reported_where_the_cookie_still_works(lab, fake_youtube):
    # The session lab offers cookie and password auth: stem falls back to the cookie.
    endpoint = dataclasses.replace(lab.endpoint, control_password="wrong")
    checks = by_name(run_checks(endpoint, ip_check_url=IP_CHECK_URL, ca_bundle=str(fake_youtube.ca_path)))
    auth = checks[doctor.AUTHENTICATION]
    assert auth.ok
    assert re.fullmatch(r"cookie, tor [\d.]+; the given control password is wrong: tor refused it", auth.detail)
    assert checks[doctor.WATCH_PAGE].ok


@pytest.mark.lab
@pytest.mark.timeout(240)  # a launched tor (90 s allowed), then four doctor runs
def test_password_use_on_cookie_only_and_password_only_tors(lab, fake_youtube, tmp_path):
    hashed = subprocess.run(
        ["tor", "--hash-password", "s3cret", "--quiet"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()[-1]

    def auth(endpoint: TorEndpoint, password: str | None) -> Check:
        endpoint = dataclasses.replace(endpoint, control_password=password)
        checks = by_name(run_checks(endpoint, ip_check_url=IP_CHECK_URL, ca_bundle=str(fake_youtube.ca_path)))
        return checks[doctor.AUTHENTICATION]

    with launch_tor(data_dir=tmp_path / "tor", extra_config=lab.client_config(), timeout=90) as tor:
        unused = auth(tor.endpoint, "wrong")  # a launched tor offers cookie auth only
        assert unused.ok
        assert unused.detail.endswith("; the given control password is not used: tor offers no password auth")

        tor.controller.set_conf("HashedControlPassword", hashed)
        tor.controller.set_conf("CookieAuthentication", "0")  # password only from now on
        wrong = auth(tor.endpoint, "wrong")
        assert not wrong.ok and wrong.detail.endswith("refused the control password")
        assert wrong.fix is not None and "HashedControlPassword" in wrong.fix and "--tor-password" in wrong.fix
        missing = auth(tor.endpoint, None)
        assert not missing.ok and missing.detail.endswith(
            "needs a password: pass --tor-password (or set YTSB_TOR_PASSWORD)"
        )
        assert missing.fix == "pass tor's control password with --tor-password (or YTSB_TOR_PASSWORD)"
        right = auth(tor.endpoint, "s3cret")
        assert right.ok and right.detail.startswith("password, tor ")
