"""`serve/journal.jsonl`: what survives a restart, one decision per hand-in."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class Journal:
    """`serve/journal.jsonl`: one JSON line per submission decided (graded, superseded, refused,
    failed), appended and fsynced before anything is released."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["name"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill: that submission is decided again
        self.file = path.open("a")

    def add(self, **entry) -> None:
        entry["at"] = time.time()
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.entries[entry["name"]] = entry

    def close(self) -> None:
        self.file.close()
