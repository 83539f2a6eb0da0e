"""Schemathesis against /api/v1/openapi.json, on the backend the suite runs on (SQLite, or
PostgreSQL with RUSSET_TEST_DATABASE_URL): no 5xx and no answer the document does not describe.

A few examples per operation keep it to seconds; `bench/fuzz_api.py --examples N` runs longer.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api_fuzz import fuzz_api

EXAMPLES = 6


def test_api_answers_generated_requests_as_documented(
    client: TestClient, api_headers: dict[str, str]
) -> None:
    sent = fuzz_api(client, api_headers, EXAMPLES)
    assert sent > 100  # every operation was exercised, in both modes
