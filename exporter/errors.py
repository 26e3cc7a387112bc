"""Errors users cause (config.yaml + rules -> load + validate): each with its file:line:col."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding in a user's file, rendered `file:line:col: context: message; expected ...`.

    `line`/`col` are 1-based; 0 means "no position" (a whole file, an environment variable).
    """

    file: str
    line: int
    col: int
    context: str
    message: str
    expected: str = ""
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line > 0 else self.file
        text = f"{where}: {self.context}: " if self.context else f"{where}: "
        if self.warning:
            text += "warning: "
        text += self.message
        if self.expected:
            text += f"; expected {self.expected}"
        return text


class UserError(Exception):
    """Input the user wrote is wrong; carries every problem found, never just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        """The problems as the lines a command prints on stderr."""
        return [str(p) for p in self.problems]
