"""The one exception type for errors a user can cause and fix."""

# what a run, a job or the CLI says on Ctrl-C, instead of a traceback
INTERRUPTED = "interrupted (Ctrl-C)"


class DinsarError(Exception):
    """A problem the user can fix: the message names the cause and the fix.

    Rule scripts and the CLI print it as one line and exit non-zero, with no traceback.
    """


class ConfigError(DinsarError):
    """The configuration is invalid."""
