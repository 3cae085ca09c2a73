"""A student's answer, before it runs: the notebook's cells (`notebook`), their code read with
Python's scoping (`reading`), the exercise's rule on it (`rules`), the program the graded process
runs (`program`) and how it is compiled for the answer language (`compiler`).

The graded process imports `compiler` (and this package): keep this file free of imports."""
