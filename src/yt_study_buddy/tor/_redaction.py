"""Keeping tor's control secrets out of log lines and error messages.

stem traces every control command and reply (``Sent to tor: AUTHENTICATE "..."``) once a
handler at its TRACE level listens, and some of its errors quote tor's replies. The password,
the cookie and what SAFECOOKIE derives from it (the AUTHCHALLENGE nonce, tor's SERVERHASH and
SERVERNONCE, the AUTHENTICATE hash) are replaced by ``[redacted]``; the rest of the trace stays.
So is the password in a URL (a PostgreSQL ledger's ``postgresql://user:PASSWORD@host/db`` or
``?password=...``, a session's ``socks5h://user:TOKEN@...``) and a session's SOCKS password in
tor's events, wherever a message quotes one: a SOCKS password only isolates, but whoever knows it
may share that session's circuit.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A password: stem quotes it without escaping, and one with a newline makes a multi-line
    # command ("+AUTHENTICATE ..."), so all that follows may be the password.
    (re.compile(r'\b(AUTHENTICATE)[ \t]+".*', re.S), rf"\1 {REDACTED}"),
    # COOKIE's cookie, or SAFECOOKIE's client hash, in hex.
    (re.compile(r"\b(AUTHENTICATE)[ \t]+[0-9A-Fa-f]+\b"), rf"\1 {REDACTED}"),
    (re.compile(r"\b(AUTHCHALLENGE[ \t]+SAFECOOKIE)[ \t]+[0-9A-Fa-f]+\b"), rf"\1 {REDACTED}"),
    (re.compile(r"\b(SERVERHASH|SERVERNONCE)=[^\s]+"), rf"\1={REDACTED}"),
    # A session's SOCKS password (its isolation token), which tor quotes in CIRC and STREAM events.
    (re.compile(r'\b(SOCKS_PASSWORD=)"(?:[^"\\]|\\.)*"'), rf'\1"{REDACTED}"'),
    # A URL's password (a database's, a SOCKS proxy's): in its user part, or as a query parameter.
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@"), rf"\1{REDACTED}@"),
    (re.compile(r"([?&]password=)[^&\s]*"), rf"\1{REDACTED}"),
)


def redact(text: str) -> str:
    """``text`` with every control-port secret and database password in it replaced by ``[redacted]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Redacts a record in place, so every handler after this filter sees the redacted text.

    On a logger it runs before any handler (ours, the root's, a test's); the message is
    formatted here, so secrets in ``%``-arguments are covered too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit: the handler's error report would show them
            message = f"{record.msg} (arguments that did not fit left out)"
            record.args = None
        redacted = redact(message)
        if redacted != message or record.args is None:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactSecrets()


def protect(target: logging.Logger | logging.Handler) -> None:
    """Attach the redacting filter to ``target`` (once)."""
    if _FILTER not in target.filters:
        target.addFilter(_FILTER)


def protect_stem() -> None:
    """Redact every record of stem's logger (stem logs everything through ``stem``)."""
    protect(logging.getLogger("stem"))
