"""The trust boundary: `runner` is the untrusted side, `launch` the trusted side that drives it."""
