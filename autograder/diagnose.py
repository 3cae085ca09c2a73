"""Name the student's actual mistake from the numbers and shapes (trusted side).

Each function returns a `Verdict` when it recognises a mistake from the catalogue in CONTRACT,
or None to let the general message stand.
"""

from __future__ import annotations

import torch


def wrong_shape(target: str, name: str, got: torch.Tensor, planned):
    return None


def wrong_values(target: str, name: str, got: torch.Tensor, planned):
    return None
