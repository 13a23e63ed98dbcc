"""Errors meant for users.

The CLI prints a :class:`DlabError` as one line (what went wrong, where, how to fix
it) and exits with status 2. Anything else is a bug and keeps its traceback.
"""


class DlabError(Exception):
    """An error caused by the user's input or environment, not by dlab."""


class UsageError(DlabError):
    """A bad id, option, setting or value on the command line."""


class DataError(DlabError):
    """A data set that is missing, truncated or malformed."""


class DeviceError(DlabError):
    """A device was asked for that this machine does not have."""


class RunFailed(Exception):
    """A run that had started and could not finish for a reason outside the program (its
    folder could not be written): the CLI prints one line and exits with status 1."""
