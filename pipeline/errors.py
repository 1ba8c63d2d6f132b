"""The one exception type the CLI turns into a plain sentence instead of a stack trace."""


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, failed check); str() is one sentence."""
