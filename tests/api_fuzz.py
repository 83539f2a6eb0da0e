"""Schemathesis against the admin API's own OpenAPI document, shared by the test suite
(tests/test_api_fuzz.py, a few examples per operation) and bench/fuzz_api.py (as many as asked).

Every operation gets requests generated from the document, valid ones and (negative mode) ones that
break it; each answer must be no 5xx, a status the document lists, and a body matching the schema it
gives for that status. Requests go through the test's own client (and so its database backend), with
an API key, so authentication is not what stops them.

No operation is skipped: those that reach Apple (ABM, Apps and Books, APNs) need a connection, a
token or an enrolled device first, and the empty server the fuzzer talks to has none, so they are
refused before any call to Apple; the gateway would refuse an unknown connection anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _send(client: TestClient, kwargs: dict[str, Any]) -> Any:
    """Send schemathesis's request (requests-style arguments) with the test's httpx client."""
    data = kwargs.pop("data", None)
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs.pop("json")
    elif isinstance(data, bytes | str):
        body["content"] = data
    elif data is not None:
        body["data"] = data
    return client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        cookies=kwargs.get("cookies") or None,
        **body,
    )


def fuzz_api(
    client: TestClient, headers: dict[str, str], examples: int, *, report: Callable[[str], None] | None = None
) -> int:
    """Run `examples` generated requests per operation and mode; returns how many were sent.

    Raises the first failure (with schemathesis's explanation and a curl line to replay it).
    """
    document = client.get("/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @given(case=strategy)
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,  # the same requests every run: a failure here is reproducible
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def one(case: Any) -> None:
                nonlocal sent
                kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
                response = _send(client, kwargs)
                sent += 1
                case.validate_response(response, checks=CHECKS, headers=kwargs["headers"])

            try:
                one()
            except Unsatisfiable:  # negative mode, for an operation with nothing to get wrong
                if mode is GenerationMode.POSITIVE:
                    raise
            if report is not None:
                report(f"{operation.label} ({mode.value}): ok")
    return sent
