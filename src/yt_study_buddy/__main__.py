"""``python -m yt_study_buddy`` is the ``yt-study-buddy`` command."""

from ._settings import APP_NAME
from .cli import main

main(prog_name=APP_NAME)
