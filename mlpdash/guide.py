"""The guided lesson a server is in: which lesson, which step, shared by every page of the server.

The projector and the teacher's laptop are two pages of one server: the step lives here, not in a
page's session, so both show it, and a reload finds it again. Opening a step carries out what it says
to the one job (`JobManager`): start its preset (stopping a run in progress first), pause, resume or
stop the run, set its pace, pause it after an epoch. A run a lesson starts is named after it.
Headless: the page and the tests drive it alike; pages notice a move by `version`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlpdash.jobs import JobBusyError, JobManager
from mlpdash.lessons import preset_named
from mlpdash.lessons.guided import Lesson, Step
from mlpdash.pace import PACES, Pace
from mlpdash.runs import MAX_NAME_CHARS, RunError, set_notes

LOG = logging.getLogger(__name__)
STOP_WAIT_SECONDS = 30.0  # the most a step waits for the run it replaces to be saved


@dataclass(frozen=True)
class Place:
    """Where the class is: a lesson's key and step (0-based), and a counter that every move raises."""

    lesson: str | None = None
    step: int = 0
    version: int = 0


class Guide:
    def __init__(self, jobs: JobManager) -> None:
        self._jobs = jobs
        self._lock = threading.Lock()
        self._starting = threading.Lock()
        self._place = Place()
        self._problem: str | None = None

    @property
    def place(self) -> Place:
        with self._lock:
            return self._place

    def open(self, lesson: Lesson, index: int, data_spec: str | None, act: bool = True) -> None:
        """Move the class to step `index` of `lesson`; with `act`, do what the step says to the run (a
        run it starts starts a moment later: `problem` says if it could not)."""
        if not 0 <= index < len(lesson.steps):
            raise IndexError(f"{lesson.title} has no step {index + 1}")
        with self._lock:
            self._place = Place(lesson.key, index, self._place.version + 1)
        if act:
            self._act(lesson, lesson.steps[index], data_spec)

    def end(self) -> None:
        """Leave the lesson: every page goes back to its own choices."""
        with self._lock:
            self._place = Place(None, 0, self._place.version + 1)

    def _act(self, lesson: Lesson, step: Step, data_spec: str | None) -> None:
        pace = PACES[step.pace] if step.pace is not None else None
        if step.run == "start":
            assert step.preset is not None  # the lesson's loader insists
            self._start(lesson, step, data_spec, pace if step.pace is not None else
                        PACES[preset_named(step.preset).pace])
            return
        job = self._jobs.job
        if job is None:
            return
        if step.pace is not None:
            job.set_pace(pace)
        if step.run == "pause":
            job.pause()
        elif step.run == "resume":
            job.pause_after_epoch(step.pause_after_epoch)
            job.resume()
        elif step.run == "stop":
            job.stop()

    def _start(self, lesson: Lesson, step: Step, data_spec: str | None, pace: Pace | None) -> None:
        """Start the step's preset in a thread of its own: the run in progress is stopped first, and
        its test and saving take seconds that the teacher's click must not wait for."""
        job = self._jobs.job
        if job is not None:
            job.stop()
        with self._lock:
            self._problem = None
        threading.Thread(target=self._start_after_stop, args=(lesson, step, data_spec, pace),
                         name="mlpdash-lesson-start", daemon=True).start()

    def _start_after_stop(self, lesson: Lesson, step: Step, data_spec: str | None, pace: Pace | None) -> None:
        with self._starting:  # a quick second Next waits for the first start, then replaces its run
            job = self._jobs.job
            if job is not None:
                job.stop()
                job.join(STOP_WAIT_SECONDS)
            if self.place.lesson != lesson.key:
                return  # the lesson ended (or another began) while the run stopped
            try:
                started = self._jobs.start(preset_named(step.preset).config, data_spec, pace=pace,
                                           on_run_dir=_namer(f"{lesson.title}: {step.preset}"))
            except JobBusyError as err:
                with self._lock:
                    self._problem = f"The step's run did not start: {err}"
                return
            started.pause_after_epoch(step.pause_after_epoch)

    @property
    def problem(self) -> str | None:
        """Why the last step's run did not start, if it did not."""
        with self._lock:
            return self._problem


def _namer(name: str) -> Callable[[Path], None]:
    """Names the run folder after the lesson as soon as it exists."""
    def name_it(path: Path) -> None:
        try:
            set_notes(path, name[:MAX_NAME_CHARS], "")
        except (RunError, ValueError, OSError):
            LOG.exception("naming the lesson's run %s failed", path)
    return name_it
