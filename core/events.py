"""Domain events: something happened (an order was recorded, two members were merged) and higher apps react.

An app owns the events about its data and sends them from its services; higher apps connect handlers in their
`AppConfig.ready()`. There are two kinds of handler:

- in-transaction handlers run at once, inside the sender's transaction, so what they write (points for an order)
  commits or rolls back with the change; their return values come back to the sender;
- on-commit handlers run after the outermost transaction commits (`transaction.on_commit`), and never for a change
  that rolled back: anything outside the database (a task, a webhook, a message) starts from one of these.

This is a direct call, not Django's signals: handlers are few, ordered, and their failures are the sender's
failures (an on-commit handler's error is logged and does not affect the others, as the change is committed).
Tests add or remove handlers for the length of a block with `connected()` and `disconnected()`.
"""

import contextlib
import functools

from django.db import DEFAULT_DB_ALIAS, transaction


class DomainEvent:
    def __init__(self, name: str, doc: str = ""):
        self.name = name
        self.__doc__ = doc
        self._handlers = []
        self._on_commit_handlers = []

    def __repr__(self):
        return f"<DomainEvent {self.name}>"

    def _list(self, on_commit):
        return self._on_commit_handlers if on_commit else self._handlers

    def connect(self, handler, *, on_commit: bool = False):
        """Call `handler(**payload)` on every send, in the transaction or after it commits; usable as a decorator."""
        handlers = self._list(on_commit)
        if handler not in handlers:
            handlers.append(handler)
        return handler

    def disconnect(self, handler) -> None:
        for handlers in (self._handlers, self._on_commit_handlers):
            if handler in handlers:
                handlers.remove(handler)

    def handlers(self, *, on_commit: bool = False) -> list:
        return list(self._list(on_commit))

    def send(self, *, using: str = DEFAULT_DB_ALIAS, **payload) -> list:
        """Run the in-transaction handlers now and return their results in order; schedule the on-commit ones."""
        results = [handler(**payload) for handler in self._handlers]
        for handler in self._on_commit_handlers:
            transaction.on_commit(functools.partial(handler, **payload), using=using, robust=True)
        return results

    @contextlib.contextmanager
    def connected(self, handler, *, on_commit: bool = False):
        """`handler` is connected for the length of the block."""
        already = handler in self._list(on_commit)
        self.connect(handler, on_commit=on_commit)
        try:
            yield handler
        finally:
            if not already:
                self._list(on_commit).remove(handler)

    @contextlib.contextmanager
    def disconnected(self, handler):
        """`handler` does not run for the length of the block, then is back in its place."""
        places = [
            (handlers, handlers.index(handler))
            for handlers in (self._handlers, self._on_commit_handlers)
            if handler in handlers
        ]
        self.disconnect(handler)
        try:
            yield
        finally:
            for handlers, position in places:
                if handler not in handlers:
                    handlers.insert(position, handler)
