"""Judging, on the trusted side: the inputs and the truth (`problems`, `plan`), what came back
(`outcome`), each call judged once (`judging`: `failures`, `kinds`, `compare`, `diagnose`), the
points (`scoring`) and the device summary (`devices`)."""
