"""The rate limit: a token bucket per student, and the note a page gets while it is empty."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


@dataclass
class Buckets:
    """A token bucket per student: `burst` results at once, then one per `every` seconds
    (`every` 0: no limit). Kept in `serve/buckets.json`: a restart refills nothing."""

    path: Path
    burst: int = 3
    every: float = 0.0
    state: dict[str, list[float]] = field(default_factory=dict)  # student: [tokens, as of]

    def load(self) -> Buckets:
        try:
            self.state = {k: [float(v[0]), float(v[1])]
                          for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError, TypeError, IndexError, AttributeError):
            self.state = {}
        return self

    def tokens(self, student: str, now: float) -> float:
        if self.every <= 0:
            return float(self.burst)
        tokens, since = self.state.get(student, [float(self.burst), now])
        return min(float(self.burst), tokens + max(0.0, now - since) / self.every)

    def take(self, student: str, now: float) -> None:
        if self.every > 0:
            self.state[student] = [max(0.0, self.tokens(student, now) - 1.0), now]

    def next_at(self, student: str, now: float) -> float | None:
        """When the student's next result can come (None: at once)."""
        have = self.tokens(student, now)
        return None if have >= 1.0 else now + (1.0 - have) * self.every

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.path)



def next_result_note(next_at: float, buckets: Buckets) -> str:
    when = datetime.fromtimestamp(next_at, timezone.utc).strftime("%H:%M UTC on %d %b")
    every = buckets.every / 60.0
    return (f"Your next official result comes at {when} at the earliest: {buckets.burst} results "
            f"come at once, then one every {every:g} minutes. Submit as often as you like: your "
            "latest submission is the one graded then, and your last submission before the due "
            "date is always graded.")
