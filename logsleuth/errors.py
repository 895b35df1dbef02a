"""One exception hierarchy for everything logsleuth reports to a user.

The CLI turns any :class:`LogsleuthError` into one line on stderr and exit code 2;
anything else escaping is a bug (and shows a traceback only with ``-v``).
"""


class LogsleuthError(Exception):
    """Base class: a problem with what the user gave us, described in one line."""


class InputError(LogsleuthError):
    """The input cannot be read: missing, a directory, empty, corrupt compression."""


class FormatError(LogsleuthError):
    """The log format is unknown, or a user-defined format file is invalid."""
