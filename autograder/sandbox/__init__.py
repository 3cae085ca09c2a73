"""The trust boundary: `runner` (in `autograder/untrusted/`) is the untrusted side; `launch` the
trusted side that drives it (`attempt`, `process`, `streams`, `failures`, `warm`), `limits` which
layers apply here, `policy` what they are, `jail` (and `forkserver`, for warm starts) the Linux
side that enters them."""
