"""A tiny in-process publish/subscribe of typed events, so a feature can react to another's
changes without either importing the other: the publisher knows only the event, and the
composition root (`russet.runtime`) subscribes the handlers.

Handlers run synchronously in the publisher's thread, after the publisher's change is committed.
A handler that fails is logged and does not fail the publisher: a device's check-in must not be
refused because, say, a group could not be re-evaluated (the periodic reconcile catches up).

This module imports nothing from `russet`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

log = logging.getLogger("russet.events")


@dataclass(frozen=True)
class Event:
    """Base of every event."""


@dataclass(frozen=True)
class DeviceFactsChanged(Event):
    """What is known of these devices (inventory, enrollment state) changed; device channel ids."""

    device_ids: tuple[str, ...]


@dataclass(frozen=True)
class CommandAnswered(Event):
    """A device answered a command: Acknowledged, Error or CommandFormatError (NotNow is not an
    answer, and a duplicate report of an answered command publishes nothing).

    `device_id` is the enrollment the command was queued for (the device channel's id for device
    commands); `result` is the device's whole report as parsed (its ErrorChain for an Error)."""

    device_id: str
    command_uuid: str
    request_type: str
    status: str
    result: Mapping[str, Any]


@dataclass(frozen=True)
class DeviceCheckedIn(Event):
    """An Authenticate, TokenUpdate or CheckOut was accepted and stored (published after that
    message's DeviceFactsChanged), for those who tell others about it (webhooks).

    `device_id` is the device channel's id, `enrollment_id` the channel the message came on (a
    user channel's differs); `message` the parsed check-in, `raw` its bytes as the device sent them."""

    message_type: str
    device_id: str
    enrollment_id: str
    message: Mapping[str, Any]
    raw: bytes


@dataclass(frozen=True)
class CommandReported(Event):
    """A device's report changed a command: Acknowledged, Error, CommandFormatError, or NotNow
    (postponed). A duplicate report publishes nothing. Unlike CommandAnswered it includes NotNow
    and the device channel's id (`device_id`) beside the reporting channel's (`enrollment_id`)."""

    device_id: str
    enrollment_id: str
    command_uuid: str
    request_type: str
    status: str
    message: Mapping[str, Any]
    raw: bytes


@dataclass(frozen=True)
class InventoryChanged(Event):
    """An acknowledged answer brought inventory that was merged into the device's inventory
    (a ProfileList, an app list, DeviceInformation...). `facts` is True when the answer is one device
    facts are read from: a DeviceFactsChanged was published for it just before."""

    device_id: str
    enrollment_id: str
    request_type: str
    facts: bool = False


@dataclass(frozen=True)
class PushFailed(Event):
    """APNs refused a push for good (`token_dead`: the token is dead until a TokenUpdate) or it
    failed (`failed`: APNs' reason, or none reached it). `device_id` is the device channel's id."""

    device_id: str
    enrollment_id: str
    outcome: str
    reason: str | None
    status: int | None


@dataclass(frozen=True)
class ConnectionDisconnected(Event):
    """A connection to Apple (ABM, Apps and Books, Activation Lock) was disconnected, and with
    `purged` its data deleted; `receipt` is the signed receipt (counts and hashes, no data)."""

    service: str
    connection: str
    purged: bool
    receipt: Mapping[str, Any]


@dataclass(frozen=True)
class DeviceAwaitingConfiguration(Event):
    """An ADE device's TokenUpdate said AwaitingConfiguration: it waits in Setup Assistant for a
    DeviceConfigured command. Published after that TokenUpdate's DeviceFactsChanged.

    `enrolled_at` is the enrollment's Authenticate time: a new value means a new enrollment (the
    device was erased and enrolled again), which waits for a DeviceConfigured of its own."""

    device_id: str
    enrolled_at: datetime | None


@dataclass(frozen=True)
class GroupMembersChanged(Event):
    """An admin changed a static group's members (added, removed, imported from a CSV). Smart
    groups built on it are re-evaluated by the groups service itself before this is published.

    `device_ids`: the device channels the change named (joined, left, or already so); what is
    scoped to the group may change for them."""

    group: str
    device_ids: tuple[str, ...]


@dataclass(frozen=True)
class BlueprintsChanged(Event):
    """A blueprint was created, changed or deleted: its items or its scope may have moved (the
    declarations a blueprint lists reach its devices through the declarative feature)."""

    blueprint_id: int


E = TypeVar("E", bound=Event)


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Callable[[Any], None]]] = {}
        self._lock = threading.Lock()

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        """Call `handler` with every event of `event_type` (or of a subclass) published from now on."""
        with self._lock:
            self._handlers.setdefault(event_type, []).append(handler)

    def publish(self, event: Event) -> None:
        """Hand `event` to its subscribers, in subscription order; their failures are logged only."""
        with self._lock:
            handlers = [h for t in type(event).__mro__ for h in self._handlers.get(t, ())]
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                name = getattr(handler, "__qualname__", repr(handler))
                log.exception("%s: a handler of %s failed", name, type(event).__name__)
