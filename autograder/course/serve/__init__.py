"""`autograder serve --course DIR`: the official grade seconds after a student submits.

A long-running grader for one course (run it as the instructor, or as a JupyterHub service that
runs as the instructor). It watches the course's nbgrader exchange (`<root>/<course>/inbound`,
where stock `nbgrader submit` and the Assignment List hand in), and for each submission of a
lesson that lands there:

    stage (inbound -> submitted/<student>/<id>/, plain files only, no link followed)
      -> grade.py's `_grade_lesson` (the same engine and records as `autograder grade`:
         gradebook, autograded/, feedback page, the class report's kept report)
      -> release that student's page into the exchange (what nbgrader's release_feedback does)

so that the student's Assignment List (`fetch_feedback`) shows the official score and page.

* The latest submission counts, as in nbgrader: a student's older submissions still waiting are
  superseded by the newest (never graded), and a resubmission's result replaces the last.
* A rate limit per student (a token bucket: `burst` results at once, then one per `every`
  minutes); a page graded with the bucket empty says when the next result comes. Once the
  assignment's due date (the gradebook's) has passed, the last submission before it is graded
  whatever the bucket holds.
* A fair queue: each round grades at most one submission per student, those who have waited
  longest first: one student's twenty resubmissions never delay another's first.
* Restart-safe: every decision is appended to `DIR/serve/journal.jsonl` (fsynced) before its
  page is released, and a submission is graded only where the journal has no word of it; on
  start, a page the journal says was graded but which is not in the exchange is released again.
  Stopped or killed mid-round, nothing is lost (what arrived while it was down is in `inbound/`)
  and nothing whose grade was recorded is graded again.
* A bad or hostile submission costs that submission only: one that cannot be graded gets 0 and
  a page that says why (as `autograder grade` does); one whose name is another student's (anyone
  can write into `inbound/`) or that is a link is refused and journaled, never graded. Each
  hand-in is decided inside its own guard: whatever its files hold, a failure is journaled as
  its result with one line for the instructor, the round goes on, and a restart never meets it
  again.
* The time of a hand-in is the server's: when its folder or anything in it last changed (the
  ctimes, which only root can set back), or when this server first saw that content, whichever
  is earlier. Never the folder's name or its `timestamp.txt`, which the student writes: the rate
  limit, the due date and the gradebook's timestamp (the staged `timestamp.txt`, from which
  nbgrader computes lateness) all use it, and the log says where the student's times disagree.
* The log's wait counts from the hand-in: the time nbgrader's submit wrote in its `timestamp.txt`
  as it began (believed for the log alone, and only where it is at most ten minutes before the
  server's time), to the page's release; it says where the hand-in came before this server
  started.
* The course's `grades.csv` (as `autograder grade` writes it) is brought up to date whenever a
  round finds nothing to grade, and at least once a minute in a long burst; each student's
  Gradescope `results.json` as each is graded. A late hand-in follows the lesson's late policy
  (`late.py`), as in `grade`.
* While it runs, it holds `serve/lock` (flock: let go however it stops, `kill -9` too), which
  keeps a second `serve` off the course and `grade` off its SQLite gradebook.
* Every line of the log has its control characters shown as escapes (`terminal.visible`, as
  `check` and `grade` show student text): a folder name is the student's.
"""


from .server import ServeError, Server

__all__ = ["ServeError", "Server"]
