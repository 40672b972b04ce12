"""The CLI's names for the settings the Tor layer's messages mention in plain words.

The Tor layer knows nothing of command lines; whoever reports its errors (the CLI, the doctor)
puts the option to change back into the message, so "point the control port setting at it"
reads "point --tor-control at it" on screen.
"""

from __future__ import annotations

import logging

from ..tor._endpoint import CONTROL_PASSWORD_SETTING, CONTROL_PORT_SETTING, SOCKS_PORT_SETTING

# The password only with its verb: "tor refused the control password" stays as it is.
_SPELLINGS = (
    (f"pass {CONTROL_PASSWORD_SETTING}", "pass --tor-password (or set YTSB_TOR_PASSWORD)"),
    (f"drop {CONTROL_PASSWORD_SETTING}", "drop --tor-password / YTSB_TOR_PASSWORD"),
    (CONTROL_PORT_SETTING, "--tor-control"),
    (SOCKS_PORT_SETTING, "--tor-socks"),
)


def with_cli_hints(message: str) -> str:
    """``message`` with each setting the Tor layer names spelled as the CLI's option."""
    for words, option in _SPELLINGS:
        message = message.replace(words, option)
    return message


class CliHints(logging.Filter):
    """Spells the settings in log lines the CLI's way too (a warning about the password)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hinted = with_cli_hints(message)
        if hinted != message:
            record.msg, record.args = hinted, None
        return True
