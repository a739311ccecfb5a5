"""User-facing errors: one line, no stack trace."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (config, arguments, input data, missing table).

    The job runner prints ``seglake <job>: error: <message>`` and exits with status 2,
    before anything is written when raised during validation.
    """


class ConfigError(UserError):
    """Invalid configuration: the message names the file, the key and what is expected."""
