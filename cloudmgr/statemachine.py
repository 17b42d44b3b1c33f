"""One small, declarative state machine for every stateful thing cloudmgr keeps.

A machine is built once per domain from a table over a :class:`enum.StrEnum`:

* ``transitions``: state → the states it may become (requests, moves, waves, systems);
* ``events``: a named action → {from state: to state} (purchases: "approve" takes a
  submitted or a resubmitted purchase to approved).  Every event edge is also a transition.

It raises the domain's own error class (so the API's ``code`` and HTTP status stay what they
were) with the domain's own message, formatted from ``current``, ``target``, ``event`` and
whatever context the caller names (``hostname=…``, ``kind=…``).

The domain's ``_transition`` still writes its own event rows and audit records; it calls
:meth:`StateMachine.check` (or :meth:`StateMachine.fire`) instead of repeating the lookup,
and :meth:`StateMachine.apply` to set the state and stamp the time.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

from cloudmgr.db import utcnow
from cloudmgr.errors import DomainError

S = TypeVar("S", bound=enum.StrEnum)

DEFAULT_MESSAGE = "{name} that is {current} cannot become {target}"
DEFAULT_EVENT_MESSAGE = "{name} that is {current} cannot be {event}ed"
UNKNOWN_STATE_MESSAGE = "unknown {name} state {state!r}"


class _Context(dict[str, Any]):
    """Message fields; one the caller did not name shows as itself rather than failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _say(message: str, **fields: Any) -> str:
    return message.format_map(_Context(fields))


class StateMachine(Generic[S]):
    """The allowed transitions of one kind of thing, and the checks that enforce them."""

    def __init__(
        self,
        name: str,
        states: type[S],
        *,
        transitions: Mapping[S, Iterable[S]] | None = None,
        events: Mapping[str, Mapping[S, S]] | None = None,
        error: type[DomainError],
        message: str = DEFAULT_MESSAGE,
        event_message: str = DEFAULT_EVENT_MESSAGE,
        unknown_message: str = UNKNOWN_STATE_MESSAGE,
        open_states: Iterable[S] | None = None,
        stamps: Mapping[S, str] | None = None,
    ) -> None:
        self.name = name
        self.states = states
        self.error = error
        self.message = message
        self.event_message = event_message
        self.unknown_message = unknown_message
        table: dict[S, set[S]] = {state: set() for state in states}
        for source, targets in (transitions or {}).items():
            table[self._member(source)].update(self._member(t) for t in targets)
        self.events: dict[str, dict[S, S]] = {}
        for event, edges in (events or {}).items():
            self.events[event] = {self._member(s): self._member(t) for s, t in edges.items()}
            for source, target in self.events[event].items():
                table[source].add(target)
        self._table: dict[S, frozenset[S]] = {state: frozenset(targets) for state, targets in table.items()}
        #: States nothing leaves.
        self.terminal: frozenset[S] = frozenset(s for s, targets in self._table.items() if not targets)
        #: States still "in progress" (by default: every state that is not terminal).
        self.open_states: frozenset[S] = (
            frozenset(self._member(s) for s in open_states)
            if open_states is not None
            else frozenset(self._table) - self.terminal
        )
        #: Entering a state sets these timestamp attributes (``apply``).
        self.stamps: dict[S, str] = {self._member(s): attr for s, attr in (stamps or {}).items()}

    def _member(self, state: object) -> S:
        if isinstance(state, self.states):
            return state
        raise TypeError(f"{state!r} is not a {self.states.__name__}")

    # --- reading the table ---------------------------------------------------------------------

    def coerce(self, state: str) -> S:
        """The member for ``state`` (a member or its stored value); the domain error otherwise."""
        try:
            return self.states(state)
        except ValueError:
            raise self.error(_say(self.unknown_message, name=self.name, state=state)) from None

    def allowed(self, state: str) -> frozenset[S]:
        """The states ``state`` may become."""
        return self._table[self.coerce(state)]

    def can(self, current: str, target: str) -> bool:
        try:
            return self.coerce(target) in self.allowed(current)
        except DomainError:
            return False

    def is_open(self, state: str) -> bool:
        return self.coerce(state) in self.open_states

    def is_terminal(self, state: str) -> bool:
        return self.coerce(state) in self.terminal

    # --- enforcing it --------------------------------------------------------------------------

    def check(self, current: str, target: str, **context: Any) -> S:
        """The target as a member, if ``current`` may become it; the domain error otherwise."""
        source, goal = self.coerce(current), self.coerce(target)
        if goal not in self._table[source]:
            raise self.error(_say(self.message, **context, name=self.name, current=source, target=goal))
        return goal

    def fire(self, current: str, event: str, **context: Any) -> S:
        """The state the named ``event`` takes ``current`` to; the domain error if it does not apply."""
        source = self.coerce(current)
        target = self.events.get(event, {}).get(source)
        if target is None:
            raise self.error(_say(self.event_message, **context, name=self.name, current=source, event=event))
        return target

    def apply(
        self,
        entity: object,
        target: str,
        *,
        now: datetime | None = None,
        clock: Callable[[], datetime] = utcnow,
        **context: Any,
    ) -> S:
        """Check, then set ``entity.state`` to ``target`` and stamp the state's timestamp.

        Returns the previous state, for the caller's event row and audit record.
        """
        previous = self.coerce(getattr(entity, "state"))  # noqa: B009 - any mapped class with a state
        goal = self.check(previous, target, **context)
        setattr(entity, "state", goal)  # noqa: B010
        attribute = self.stamps.get(goal)
        if attribute is not None:
            setattr(entity, attribute, now or clock())
        return previous
