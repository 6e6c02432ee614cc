"""One registry per kind of plug-in, keyed by the names used in scenario files."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from bidscape.errors import InputError, Problem, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (mechanisms, strategies). Each instance has its own dict."""

    def __init__(self, kind: str, plural: str):
        self.kind = kind
        self.plural = plural
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"a {self.kind} named '{name}' is already registered")
        self._entries[name] = entry
        return entry

    def get(self, name: str, path: str = "") -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise InputError(self.unknown(name, path)) from None

    def unknown(self, name: str, path: str) -> Problem:
        return Problem(
            path,
            f"unknown {self.kind} '{name}'",
            f"{did_you_mean(name, self._entries)}use one of: {', '.join(sorted(self._entries))} "
            f"(`bidscape list {self.plural}`)",
        )

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())
