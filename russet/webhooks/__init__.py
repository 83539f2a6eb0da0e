"""Webhooks: MDM events delivered to the organisation's own receivers as signed JSON, from a
durable outbox, retried with backoff, in order per device, with a delivery log."""
