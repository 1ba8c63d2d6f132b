"""The exception types the CLI turns into one plain sentence instead of a stack trace.

A leaf module (it imports nothing), so worker-side code in `models/` and `components/` can raise
them without depending on `pipeline/`, the layer that holds the CLI and the runner.

How the CLI ends (pipeline/cli.py): a `UserError` (bad input, a failed check: the user can fix it)
exits with `EXIT_USER_ERROR`; an `InternalError` (already told in one sentence, its traceback in a
log) and any other exception exit with `EXIT_INTERNAL_ERROR`; Ctrl-C with 130 and SIGTERM
(`Terminated`) with 143, both in one line.
"""

EXIT_INTERNAL_ERROR = 1
EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, failed check); str() is one sentence."""


class InternalError(Exception):
    """A failure that is not the user's input (a bug, a crashed library, the machine), already
    told in one sentence by str() that names where its full traceback was written."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Kubernetes and `kill` send), raised in the main thread so that everything that
    cleans up after Ctrl-C (locks, temporary folders, the console) cleans up after it too."""

    def __init__(self, signum: int = 15):
        super().__init__(signum)
        self.signum = signum
