"""A lesson, read as data: its folder and spec (`model`), the names of check kinds it may give
(`kind_names`), its points and seeds (`resolve`), and the files a worker that shares no disk
needs to grade it (`bundle`). Nothing here judges: that is `autograder.judge`."""
