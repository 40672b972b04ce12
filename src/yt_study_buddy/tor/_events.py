"""One owner for a controller's tor events: a dispatcher that fans STREAM, CIRC and SIGNAL
events out to the parts of the client that follow them.

stem registers each listener with tor on its own (a ``SETEVENTS`` per add and per remove), and a
listener removed from a controller whose tor is gone raises. Here the dispatcher asks tor for an
event type once, on the first subscriber, and subscribers come and go locally: nothing to undo in
tor and nothing that can fail on the way out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from stem.control import Controller

log = logging.getLogger(__name__)

#: A subscriber: called on stem's single event thread, so it must return quickly.
Listener = Callable[[Any], None]


class EventDispatcher:
    """Delivers each event of a controller to the subscribers of its type, in subscription order."""

    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._lock = threading.Lock()  # guards _subscribers; never held while talking to tor
        self._registering = threading.Lock()  # one SETEVENTS at a time
        # stem's event types are plain strings ('STREAM'), as is each event's ``type``.
        self._subscribers: dict[str, tuple[Listener, ...]] = {}
        self._registered: set[str] = set()

    def subscribe(self, event_type: str, listener: Listener) -> None:
        """Start calling ``listener`` with every ``event_type`` event (tor is asked once per type)."""
        with self._registering:
            if event_type not in self._registered:
                # stem's event thread holds stem's listener lock while delivering, and delivery
                # takes ``_lock``: asking tor under ``_lock`` could deadlock, hence the order.
                self._controller.add_event_listener(self._deliver, event_type)
                self._registered.add(event_type)
            with self._lock:
                self._subscribers[event_type] = (*self._subscribers.get(event_type, ()), listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling ``listener``; tor keeps sending the events until the controller closes."""
        with self._lock:
            for event_type, listeners in self._subscribers.items():
                self._subscribers[event_type] = tuple(known for known in listeners if known != listener)

    def _deliver(self, event: Any) -> None:
        with self._lock:
            listeners = self._subscribers.get(event.type, ())
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                # One broken subscriber must not starve the others of their events.
                log.exception("a %s event listener failed", event.type)
