"""A small accumulator that checks push findings into, with the current JSON pointer."""

from __future__ import annotations

from beatspec.findings import Finding, outcome_for

__all__ = ["Collector", "describe", "escape_pointer"]

_MAX_FOUND = 80


def escape_pointer(token: str | int) -> str:
    text = str(token)
    if "~" in text or "/" in text:
        return text.replace("~", "~0").replace("/", "~1")
    return text


def describe(value: object) -> str:
    """A short, safe rendering of a JSON value for a message."""
    import json

    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=True, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    if len(text) > _MAX_FOUND:
        text = text[: _MAX_FOUND - 3] + "..."
    return text


class _At:
    __slots__ = ("_count", "_path", "_tokens")

    def __init__(self, path: list[str], tokens: tuple[str | int, ...]) -> None:
        self._path = path
        self._tokens = tokens
        self._count = len(tokens)

    def __enter__(self) -> None:
        for token in self._tokens:
            self._path.append(escape_pointer(token) if isinstance(token, str) else str(token))

    def __exit__(self, *exc: object) -> None:
        del self._path[len(self._path) - self._count :]


class Collector:
    """Collects findings; ``at()`` descends into a member so pointers come out right."""

    def __init__(self, *, key: str | None = None, field: str | None = None) -> None:
        self.key = key
        self.field = field
        self._path: list[str] = []
        self.findings: list[Finding] = []

    @property
    def pointer(self) -> str:
        return "".join("/" + p for p in self._path)

    def at(self, *tokens: str | int) -> _At:
        """Descend into member(s) for the duration of a ``with`` block."""
        return _At(self._path, tokens)

    def add(self, rule: str, found: object, message: str, hint: str, *, raw: bool = False) -> None:
        self.findings.append(
            Finding(
                rule=rule,
                outcome=outcome_for(rule),
                pointer=self.pointer,
                found=str(found) if raw else describe(found),
                message=message,
                hint=hint,
                key=self.key,
                field=self.field,
            )
        )

    def has_failed(self, since: int = 0) -> bool:
        from beatspec.findings import Outcome

        return any(f.outcome is Outcome.FAILED for f in self.findings[since:])
