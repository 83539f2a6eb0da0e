"""The push topic, looked up while serving instead of once at start-up.

The installed push certificate names the topic (RUSSET_PUSH_TOPIC is only the fallback when none is
installed). Importing a new certificate, through the API or on another node with `russet apns
import`, must not need a restart: devices enrolled with the new topic would otherwise be refused at
Authenticate. So the topic is cached here and read again when it is older than `max_age` seconds,
and at once after an import in this process (`invalidate`). A re-read costs one indexed query for
the certificate's fingerprint; the certificate itself is only loaded when that changed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from russet.apns.certificate import effective_push_topic
from russet.apns.ports import PushStores
from russet.apns.state import push_certificate_fingerprint

DEFAULT_MAX_AGE_SECONDS = 30.0


class PushTopic:
    """Callable: the current push topic, or None when there is no certificate and no fallback."""

    def __init__(
        self,
        storage: PushStores,
        configured: str | None,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self.configured = configured
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._fingerprint: str | None = None
        self._topic = configured

    def __call__(self) -> str | None:
        now = self._clock()
        read_at = self._read_at
        if read_at is not None and now - read_at < self.max_age:
            return self._topic
        with self._lock:  # one thread re-reads; the others wait for its answer rather than repeat it
            if self._read_at is None or now - self._read_at >= self.max_age:
                self._refresh()
                self._read_at = now
            return self._topic

    def invalidate(self) -> None:
        """Read the topic again on next use (after a certificate import in this process)."""
        self._read_at = None

    def _refresh(self) -> None:
        fingerprint = push_certificate_fingerprint(self._storage.engine)
        if fingerprint is None:
            self._fingerprint, self._topic = None, self.configured
        elif fingerprint != self._fingerprint:
            self._topic = effective_push_topic(self._storage, self.configured)
            self._fingerprint = fingerprint
