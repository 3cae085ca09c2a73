"""`autograder` with a bug in the rules made on purpose (see conftest.rules_let_through): for
the tests of what the sandbox holds when code outside the answer language runs anyway."""

from autograder.answer import rules
from autograder.cli import main
from autograder.sandbox import attempt
from tests.conftest import _let_through

rules.judge = _let_through
attempt.GUARDED = False
main()
