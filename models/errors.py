"""The one exception type the CLI turns into a plain sentence instead of a stack trace.

A leaf module (it imports nothing), so worker-side code in `models/` and `components/` can raise
it without depending on `pipeline/`, the layer that holds the CLI and the runner.
"""


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, failed check); str() is one sentence."""
