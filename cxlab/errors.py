"""Exceptions that cxlab raises for problems the user can fix.

Every user error derives from :class:`CxlabError`; the CLI turns it into a short message and
exit code 2 (no traceback). Anything else is a bug in cxlab and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["CxlabError", "StudyError", "DataContractError", "ParameterError", "ModelError"]


class CxlabError(Exception):
    """A problem with the user's input (study spec, data, parameters): exit code 2."""

    exit_code = 2


class StudyError(CxlabError):
    """The study spec cannot be read or does not follow the documented format."""


class DataContractError(CxlabError):
    """The study's data files break the data contract.

    ``problems`` is a tidy DataFrame with one row per problem
    (file, column, rule, rows, examples).
    """

    def __init__(self, message: str, problems=None):
        super().__init__(message)
        self.problems = problems


class ParameterError(CxlabError):
    """A notebook or run parameter is unknown or has the wrong type."""


class ModelError(CxlabError):
    """A model cannot be fitted on this data (no events, no variance, separation, ...)."""
