"""``python -m yt_study_buddy`` is the ``yt-study-buddy`` command."""

from .cli import main

main(prog_name="yt-study-buddy")
