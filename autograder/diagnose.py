"""Kept for lessons written before 2026-12: `from autograder import diagnose`. The engine's
general diagnoses live in `autograder.judge.diagnose`, which a lesson's hooks import now."""

from .judge.diagnose import *  # noqa: F403
