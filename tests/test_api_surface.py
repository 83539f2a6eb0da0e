"""The admin API's input edges: out-of-range ids, NUL characters, over-long strings, unknown fields,
coerced types, and the 4xx answers the OpenAPI document describes. Same answers on SQLite and
PostgreSQL (the suite runs on both)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from russet.kernel.errors import NotFound
from russet.runtime import Russet
from russet.storage.db import MAX_DB_INT
from russet.web.errors import status_for


@pytest.mark.parametrize("token_id", [2**63, 2**64, -1, 0])
def test_out_of_range_token_ids_are_422_not_500(
    client: TestClient, api_headers: dict[str, str], token_id: int
) -> None:
    response = client.post(f"/api/v1/enrollment/tokens/{token_id}/revoke", headers=api_headers)
    assert response.status_code == 422
    assert "token_id" in str(response.json()["detail"])


def test_largest_id_is_a_plain_404(client: TestClient, api_headers: dict[str, str]) -> None:
    response = client.post(f"/api/v1/enrollment/tokens/{MAX_DB_INT}/revoke", headers=api_headers)
    assert response.status_code == 404 and "no enrollment token" in response.json()["detail"]


def test_cli_and_api_share_the_id_bound(russet: Russet) -> None:
    """`russet enrollment revoke 9223372036854775808` reaches the same operation: a 404, no crash."""
    with pytest.raises(NotFound) as refused:
        russet.enrollment.revoke_token(2**63)
    assert status_for(refused.value) == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/enrollment/tokens", {"note": "a\x00b"}, "note"),
        ("/api/v1/commands", {"devices": ["A\x00"], "command": {"RequestType": "ProfileList"}}, "devices[0]"),
        (
            "/api/v1/commands",
            {"devices": ["A"], "command": {"RequestType": "DeviceLock", "Message": "x\x00"}},
            "command.Message",
        ),
        ("/api/v1/push", {"devices": ["\x00"]}, "devices[0]"),
        ("/api/v1/apps/install", {"device": "D", "adam_id": "1\x00"}, "adam_id"),
    ],
)
def test_nul_in_a_body_is_422_naming_the_field(
    client: TestClient, api_headers: dict[str, str], path: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(path, json=body, headers=api_headers)
    assert response.status_code == 422, response.text
    assert f"{field}: NUL characters" in str(response.json()["detail"])


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/v1/devices?search=a%00b", "search"),
        ("/api/v1/devices?after=%00", "after"),
        ("/api/v1/devices/abc%00def", "device_id"),
        ("/api/v1/ledger/subjects/C02%00", "identifier"),
        ("/api/v1/apps/installs?device=%00", "device"),
        ("/api/v1/abm/x%00y/devices", "name"),
    ],
)
def test_nul_in_query_or_path_is_422_naming_it(
    client: TestClient, api_headers: dict[str, str], url: str, name: str
) -> None:
    response = client.get(url, headers=api_headers)
    assert response.status_code == 422, response.text
    assert f"parameter {name!r}: NUL characters are not allowed" in response.json()["detail"]


def test_parameters_are_checked_only_after_authentication(client: TestClient) -> None:
    assert client.get("/api/v1/devices?search=%00").status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "limit"),
    [
        ("/api/v1/enrollment/tokens", {"note": "n" * 201}, "200"),
        ("/api/v1/apps/install", {"device": "D", "adam_id": "1" * 41}, "40"),
        ("/api/v1/apps/install", {"device": "D" * 301, "adam_id": "1"}, "300"),
        ("/api/v1/vpp/loc/licences", {"adam_id": "1", "serial_numbers": ["S" * 65]}, "64"),
    ],
)
def test_over_long_strings_are_422_with_the_limit(
    client: TestClient, api_headers: dict[str, str], path: str, body: dict[str, Any], limit: str
) -> None:
    response = client.post(path, json=body, headers=api_headers)
    assert response.status_code == 422, response.text
    assert f"at most {limit} characters" in str(response.json()["detail"])


def test_over_long_query_values_are_refused(client: TestClient, api_headers: dict[str, str]) -> None:
    response = client.get("/api/v1/devices?search=" + "x" * 1025, headers=api_headers)
    assert response.status_code == 422 and "longer than 1024" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"uses": True},  # a boolean is not a number of uses
        {"uses": "3"},  # nor is a string
        {"uses": 1.0},
        {"uses": 2, "note": "x", "bogus": 1},  # a typo is refused, not ignored
        {"uses": 2**63},  # out of range
    ],
)
def test_token_request_is_strict(
    client: TestClient, api_headers: dict[str, str], russet: Russet, body: dict[str, Any]
) -> None:
    response = client.post("/api/v1/enrollment/tokens", json=body, headers=api_headers)
    assert response.status_code == 422, response.text
    assert russet.enrollment.list_tokens() == []  # nothing stored


def test_strict_booleans_and_unknown_fields_everywhere(
    client: TestClient, api_headers: dict[str, str]
) -> None:
    disconnect = "/api/v1/connections/apns/push/disconnect"
    assert client.post(disconnect, json={"purge": "yes"}, headers=api_headers).status_code == 422
    assert client.post(disconnect, json={"purge": 1}, headers=api_headers).status_code == 422
    command = {"devices": ["X"], "command": {"RequestType": "ProfileList"}, "priority": 1}
    response = client.post("/api/v1/commands", json=command, headers=api_headers)
    assert response.status_code == 422 and "priority" in str(response.json()["detail"])


# Routes whose body is a file rather than a JSON model (they check the file themselves).
FILE_UPLOADS = {"/api/v1/profiles"}


def test_openapi_documents_the_error_answers(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert document["components"]["schemas"]["ApiError"]["required"] == ["detail"]
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path == "/api/v1/health":
                assert set(responses) == {"200"}
                continue
            checked += 1
            assert {"400", "401", "422"} <= set(responses), (method, path)
            if "{" in path or "requestBody" in operation:
                assert "404" in responses, (method, path)
            if "requestBody" in operation:
                assert "413" in responses, (method, path)
                body = next(iter(operation["requestBody"]["content"].values()))["schema"]
                if body.get("format") == "binary":  # a file as the body (profile uploads): no model
                    assert path in FILE_UPLOADS, (method, path)
                else:
                    refs = [body.get("$ref")] + [b.get("$ref") for b in body.get("anyOf", [])]  # optional
                    (ref,) = [r for r in refs if r]
                    model = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
                    assert model["additionalProperties"] is False, ref
            if method != "get":
                assert "409" in responses, (method, path)
            for code in set(responses) - {"200", "201"}:
                schema = responses[code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ApiError"}, (method, path, code)
    assert checked > 40
