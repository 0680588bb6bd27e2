"""The one exception type for errors a user can cause and fix."""


class DinsarError(Exception):
    """A problem the user can fix: the message names the cause and the fix.

    Rule scripts and the CLI print it as one line and exit non-zero, with no traceback.
    """


class ConfigError(DinsarError):
    """The configuration is invalid."""
