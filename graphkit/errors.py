"""Problems found in user input, and the exception that carries them."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph: where (node, field) and one plain sentence."""

    code: str
    message: str
    node: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.node is not None:
            where.append(f"node '{_shown(self.node)}'")
        if self.field is not None:
            where.append(f"'{_shown(self.field)}'")
        prefix = " ".join(where)
        message = _shown(self.message, 2000)
        return f"{prefix}: {message}" if prefix else message

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


class GraphError(Exception):
    """Bad user input: a graph, an override or a param. Carries every problem found."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self.lines()[0] if self.problems else "invalid graph")

    def lines(self) -> list[str]:
        """One line per problem, prefixed with the file when known."""
        prefix = f"{self.source}: " if self.source else ""
        return [f"{prefix}{p}" for p in self.problems]


def _shown(text: str, limit: int = 80) -> str:
    """Names from a graph file as one printable line: control characters escaped, cut short."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                       for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def problem(code: str, message: str, node: str | None = None, field: str | None = None) -> Problem:
    """Shorthand for building a Problem."""
    return Problem(code=code, message=message, node=node, field=field)
