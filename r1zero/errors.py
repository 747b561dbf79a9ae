"""The one exception type for mistakes a user can make.

A `UserError` carries a single line naming what was wrong and what was expected. The CLI prints
it without a traceback and exits with status 2; everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from a user: a recipe key, a path, a dataset row, a request."""
