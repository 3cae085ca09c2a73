"""Kept for lessons written before 2026-12: `from autograder.report import Verdict` (a lesson's
hooks now import it from `autograder.lesson_api`). The report lives in `autograder.present.report`."""

from .present.report import *  # noqa: F403
from .present.report import Verdict  # noqa: F401
