"""Undo and redo: stacks of whole graph documents (their JSON text), so every edit, made on
the canvas or in the inspector, undoes the same way."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_STEPS = 200


@dataclass
class History:
    """The document as last committed, and the states before (undo) and after (redo) it."""

    committed: str
    undo_stack: list[str] = field(default_factory=list)
    redo_stack: list[str] = field(default_factory=list)

    def commit(self, text: str) -> bool:
        """Record ``text`` as the new state when it differs; returns whether it did."""
        if text == self.committed:
            return False
        self.undo_stack.append(self.committed)
        del self.undo_stack[:-MAX_STEPS]
        self.redo_stack.clear()
        self.committed = text
        return True

    def undo(self) -> str | None:
        """The state before the last commit (None when there is none)."""
        if not self.undo_stack:
            return None
        self.redo_stack.append(self.committed)
        self.committed = self.undo_stack.pop()
        return self.committed

    def redo(self) -> str | None:
        """The state an undo went back from (None when there is none)."""
        if not self.redo_stack:
            return None
        self.undo_stack.append(self.committed)
        self.committed = self.redo_stack.pop()
        return self.committed

    def reset(self, text: str) -> None:
        """Start over from ``text`` (another graph was opened)."""
        self.committed = text
        self.undo_stack.clear()
        self.redo_stack.clear()
