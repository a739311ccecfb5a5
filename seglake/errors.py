"""User-facing errors: one line, no stack trace."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (config, arguments, input data, missing table).

    The job runner prints ``seglake <job>: error: <message>`` and exits with status 2
    (:data:`USER_ERROR_EXIT`), before anything is written when raised during validation.
    Anything else that escapes a job is a bug or an unexpected failure (a lost executor, a
    storage outage): its traceback goes to the log and the run exits 1 (:data:`BUG_EXIT`).
    """


USER_ERROR_EXIT = 2
BUG_EXIT = 1


class StageFailedError(Exception):
    """A stage of a pipeline run failed (its tables restored); ``user_error`` says whether the
    cause was a :class:`UserError` (exit 2) or not (exit 1)."""

    def __init__(self, message: str, *, user_error: bool) -> None:
        super().__init__(message)
        self.user_error = user_error


def exit_status(exc: BaseException) -> int:
    """2 for a mistake the user can fix, 1 for anything else."""
    if isinstance(exc, UserError) or (isinstance(exc, StageFailedError) and exc.user_error):
        return USER_ERROR_EXIT
    return BUG_EXIT


class ConfigError(UserError):
    """Invalid configuration: the message names the file, the key and what is expected."""
