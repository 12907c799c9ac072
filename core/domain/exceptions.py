"""Exceptions whose message is written for the trader, not the developer.

Anything derived from UserFacingError may be shown in chat or on the CLI as is (one line, no
traceback). Everything else is a bug or an outage and goes through the ErrorHandler.
"""
from __future__ import annotations


class UserFacingError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownSymbolError(UserFacingError):
    def __init__(self, symbol: str, suggestions: list[str], known: list[str] | None = None):
        if suggestions:
            hint = f" Did you mean {', '.join(suggestions)}?"
        else:
            hint = f" Symbols I know: {', '.join(known)}." if known else ""
        super().__init__(f"I don't know the symbol '{symbol}'.{hint}")
        self.symbol = symbol
        self.suggestions = suggestions


class NotAuthorizedError(UserFacingError):
    pass


class DataFileError(UserFacingError):
    """A market-data file is missing or malformed; the message names the file and, where known, the line."""

    def __init__(self, path: str, problem: str, line: int | None = None):
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


class ProposalError(UserFacingError):
    pass
