"""Reading and planning a long URL file must stay linear: time each step at 1,000 and 10,000 lines.

No tor and no network: a temporary output directory holds a run log in which half the videos
are fetched (their notes exist), as after an interrupted batch. Steps:

- **read**: ``cli.read_inputs`` on the file (every URL form, comments, duplicates);
- **done**: ``done_video_ids``, which reads the run log and looks for every note;
- **plan**: ``BatchRunner.plan``, done versus to do;
- **run**: ``BatchRunner.run`` when every video is done (plan, run_start, summary, run_end);
- **claim**: per video to fetch, what a worker adds before taking an exit (claim it, read the
  run log's new lines, check it is not done meanwhile, release it).

    .venv/bin/python -m benchmarks.planning [--sizes 1000 10000] [--repeat 3] [--json out.json]

Linear means a ratio near 10 between the two sizes; a quadratic step would show about 100.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks import scaling
from benchmarks.scaling import best_of
from yt_study_buddy._settings import run_log_path
from yt_study_buddy.app._batch import BatchOptions, BatchRunner
from yt_study_buddy.app._progress import PlainReporter
from yt_study_buddy.app._run_log import DoneTracker, RunLog, VideoClaims, VideoResult, VideoStatus, done_video_ids
from yt_study_buddy.cli import read_inputs
from yt_study_buddy.notes._files import note_stem

FORMS = (
    "https://www.youtube.com/watch?v={id}&list=PL123&t=42s",
    "https://youtu.be/{id}?si=abc",
    "youtube.com/shorts/{id}",
    "https://www.youtube-nocookie.com/embed/{id}?start=5",
    "{id}   # a bare id with a comment",
)


def video_id(n: int) -> str:
    return f"v{n:010d}"


def url_file(path: Path, lines: int) -> list[str]:
    """``lines`` lines: URLs in every form, a comment every 10th line, a duplicate every 20th."""
    ids, text = [], []
    for n in range(lines):
        if n % 10 == 9:
            text.append("# a comment")
        elif n % 20 == 4 and ids:
            text.append(ids[n // 2 % len(ids)])
        else:
            ids.append(video_id(n))
            text.append(FORMS[n % len(FORMS)].format(id=ids[-1]))
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return ids


def half_done(output: Path, ids: list[str]) -> RunLog:
    """A run log in which every other video was fetched (its note exists) or failed."""
    log = RunLog(run_log_path(output))
    lines = [json.dumps({"event": "run_start", "run_id": "bench", "settings": {}})]
    for n, vid in enumerate(ids):
        result = VideoResult(
            vid,
            VideoStatus.FETCHED if n % 2 == 0 else VideoStatus.FAILED,
            worker=1,
            exit_ip="127.0.0.1",
            exits_used=["127.0.0.1"],
            attempts=1,
        )
        if result.status == "fetched":
            note = output / f"{note_stem(f'Lecture {n}', vid)}.md"
            note.write_text("# a note\n")
            result.files = [str(note)]
        lines.append(json.dumps({"event": "video", "run_id": "bench", **result.to_json()}))
    log.path.parent.mkdir(parents=True, exist_ok=True)
    log.path.write_text("\n".join(lines) + "\n")  # one write: appending each line would fsync each
    return log


def runner(output: Path, log: RunLog) -> BatchRunner:
    client: Any = SimpleNamespace(strategy=SimpleNamespace(name="isolate"))  # run() needs no tor when all is done
    return BatchRunner(client, BatchOptions(output_dir=output), reporter=PlainReporter(io.StringIO()), run_log=log)


def claim_each(output: Path, log: RunLog, todo: list[str]) -> None:
    claims = VideoClaims(log.path.parent / "claims")
    tracker = DoneTracker(log.path, output)
    for vid in todo:
        claim = claims.try_claim(vid)
        assert claim is not None
        tracker.refresh()
        assert not tracker.is_done(vid)
        claim.release()


def measure(lines: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ytsb-planning-") as tmp:
        root = Path(tmp)
        urls = root / "urls.txt"
        ids = url_file(urls, lines)
        output = root / "notes"
        output.mkdir()
        log = half_done(output, ids)
        done = done_video_ids(log.path, output)
        todo = [vid for vid in ids if vid not in done]
        assert read_inputs((), str(urls)).ids == ids and len(done) == (len(ids) + 1) // 2
        all_done = root / "all-done"
        all_done.mkdir()
        done_log = RunLog(all_done / "runs.jsonl")
        for vid in ids:
            (all_done / f"{vid}.md").write_text("# a note\n")
        done_log.path.write_text(
            "".join(
                json.dumps({"event": "video", "video_id": vid, "status": "fetched", "files": [f"{vid}.md"]}) + "\n"
                for vid in ids
            )
        )
        return {
            "read": best_of(repeat, lambda: read_inputs((), str(urls))),
            "done": best_of(repeat, lambda: done_video_ids(log.path, output)),
            "plan": best_of(repeat, lambda: runner(output, log).plan(ids)),
            "run": best_of(repeat, lambda: runner(all_done, done_log).run(ids)),
            "claim": best_of(repeat, lambda: claim_each(output, log, todo)),
        }


if __name__ == "__main__":
    scaling.main(__doc__, measure, "lines", (1000, 10000))
