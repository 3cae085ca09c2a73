"""backprop-autograder: grades the backward-pass lesson in an isolated process."""

__version__ = "0.1.0"
