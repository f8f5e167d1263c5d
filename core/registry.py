"""A small ordered registry of callables: the extension points a lower app offers to higher ones (a panel on the
member page, a card on the home page, the member list's tier filter, an earning-rule type, a badge rule).

The owner declares a `Registry`; a higher app registers in its `AppConfig.ready()`; tests swap entries for the
length of a `with` block through `registered()`/`unregistered()`, never by reaching into the list.
"""

import contextlib


class Registry:
    def __init__(self, name: str):
        self.name = name
        self._entries = []

    def __repr__(self):
        return f"<Registry {self.name}: {len(self._entries)} entries>"

    def __iter__(self):
        return iter(list(self._entries))

    def __len__(self):
        return len(self._entries)

    def register(self, entry):
        """Add `entry` once (registering twice is harmless); usable as a decorator."""
        if entry not in self._entries:
            self._entries.append(entry)
        return entry

    def unregister(self, entry) -> None:
        if entry in self._entries:
            self._entries.remove(entry)

    def collect(self, **kwargs) -> list:
        """Call every entry with `kwargs` and concatenate the lists they return (None counts as empty)."""
        return [item for entry in self._entries for item in (entry(**kwargs) or [])]

    @contextlib.contextmanager
    def registered(self, entry):
        """`entry` is registered for the length of the block, then removed again."""
        already = entry in self._entries
        self.register(entry)
        try:
            yield entry
        finally:
            if not already:
                self.unregister(entry)

    @contextlib.contextmanager
    def unregistered(self, entry):
        """`entry` is out for the length of the block, then back in its place."""
        position = self._entries.index(entry) if entry in self._entries else None
        self.unregister(entry)
        try:
            yield
        finally:
            if position is not None and entry not in self._entries:
                self._entries.insert(position, entry)
