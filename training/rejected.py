"""Data a training step cannot use as it is: one error type, printed by the command line as
a message instead of a traceback (``tijdig train``, ``tijdig import``)."""

from __future__ import annotations

#: Example rows a rejection names per problem.
EXAMPLES = 5


class TrainingDataRejected(ValueError):
    """The data cannot be trained on as it is; the message says why and what to change."""


class RowsRejected(TrainingDataRejected):
    """A table's rows that cannot be used: the message lists every problem with example
    rows (0-based positions in the file, header not counted). Subclasses name the table."""

    what = "rows"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{self.what} rejected (rows counted from 0, header not counted):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def shown(value: object) -> str:
    """A value as a message shows it: text quoted, anything else as it prints."""
    return repr(value) if isinstance(value, str) else str(value)
