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


class StrategyRegistry:
    """Rules as data: a row's `kind` (an earning rule's, a badge's, next a segment condition's) picks one small
    strategy class, registered under that key (the pattern of django-oscar's offer conditions and benefits)."""

    def __init__(self, name: str):
        self.name = name
        self._strategies = {}

    def register(self, strategy_class):
        """Class decorator: register one instance under the class's `key`."""
        self._strategies[strategy_class.key] = strategy_class()
        return strategy_class

    def get(self, key):
        try:
            return self._strategies[key]
        except KeyError:
            raise LookupError(f"no {self.name} strategy for {key!r}") from None

    def keys(self, **attributes) -> set:
        """The keys whose strategies have all of these attribute values (e.g. `keys(triggered_by="order")`)."""
        return {
            key
            for key, strategy in self._strategies.items()
            if all(getattr(strategy, name, None) == value for name, value in attributes.items())
        }

    @contextlib.contextmanager
    def replaced(self, strategy_class):
        """`strategy_class` serves its key for the length of the block (tests), then the previous one again."""
        previous = self._strategies.get(strategy_class.key)
        self.register(strategy_class)
        try:
            yield
        finally:
            if previous is None:
                del self._strategies[strategy_class.key]
            else:
                self._strategies[strategy_class.key] = previous
