"""The names of the check kinds a lesson.toml may give, and which half of the runner each is for:
plain data, so that reading a lesson knows nothing of judging (`kinds` holds what each does).
"""

#: Each kind lesson.toml may name, and the target kind it checks (`wire.Call`'s kind): a
#: "function" target's `.g`s, or a "probe" of a `Module`'s backward().
RUNS = {"values": "function", "unchanged": "function", "probe": "probe"}
NAMES = tuple(RUNS)
#: The kind of the gate every target has ("no-autograd", `lesson.NO_AUTOGRAD`): the source read,
#: never run (`scoring.judge_static`), so it has no calls.
STATIC = "static"
