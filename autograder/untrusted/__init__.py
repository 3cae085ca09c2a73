"""What runs in the student's process: the graded program's runner and its calls (stdlib, torch
and `autograder.wire` only)."""
