"""Reading a location from Apple: the service limits and the complete asset listing (§f.3, §f.5, §f.8).

The listing is paged (`pageIndex`, `nextPageIndex`); every page is checked and the whole listing
is applied in one transaction at the end, so an interrupted or refused listing changes nothing.
The same asset listed twice (pages can shift while Apple's list changes) is kept once.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from russet.apple.connections import ConnectionRegistry
from russet.vpp.client import VppClient
from russet.vpp.errors import ProtocolError
from russet.vpp.records import asset_page
from russet.vpp.store import VppStore

LEASE = timedelta(minutes=30)
MAX_PAGES = 10_000  # a runaway listing (a page pointing to ever more pages) stops here


async def refresh_limits(store: VppStore, client: VppClient) -> dict[str, Any]:
    """Apple's current request limits (they are dynamic: Apple asks to re-read them)."""
    limits = (await client.service_config())["limits"]
    store.save_config(client.name, {"limits": limits})
    return dict(limits)


async def sync_assets(connections: ConnectionRegistry, store: VppStore, client: VppClient) -> dict[str, Any]:
    """Read every page of the location's assets, then apply the listing at once (under the
    location's lease in the registry, so a purge waits for it)."""
    name = client.name
    started = time.perf_counter()
    with connections.lease("vpp", name, "sync", ttl=LEASE):
        try:
            await refresh_limits(store, client)
            rows: dict[tuple[str, str], dict[str, Any]] = {}
            page_index, pages, version = 0, 0, None
            while True:
                reply = await client.assets_page(page_index)
                page = asset_page(reply.body, page_index)
                client.record(reply, page.data)
                if pages == 0:
                    version = page.version_id  # the listing's version is the first page's
                for row in page.assets:
                    rows[(row["adam_id"], row["pricing_param"])] = row
                pages += 1
                if page.next_page is None:
                    break
                if pages >= MAX_PAGES:
                    raise ProtocolError(f"Apple's asset listing did not end after {MAX_PAGES} pages")
                page_index = page.next_page
        except Exception as exc:
            store.note_sync(name, error=str(exc) or type(exc).__name__)
            raise
        applied = store.replace_assets(name, list(rows.values()), version)
    return {
        "location": name,
        "pages": pages,
        **applied,
        "version_id": version,
        "seconds": round(time.perf_counter() - started, 3),
    }
