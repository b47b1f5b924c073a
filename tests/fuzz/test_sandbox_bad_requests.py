"""The sandbox under bad requests, over real HTTP: Billbee's answers, never a 500, still up.

Binding errors are 400 ``{"Message", "ModelState"}``, bad credentials 401, unknown paths
404, unsupported methods 405, bodies over 1 MiB 413, non-JSON media types 415 (ASP.NET
Web API's answer). After every test a normal create still works and the journal holds
no 500.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from billbee_provider.sandbox import SandboxConfig, SandboxServer
from billbee_provider.sandbox.middleware import MAX_BODY_BYTES

from .strategies import PROPERTY_TIMEOUT, flat_bodies, json_values, nested, texts

pytestmark = pytest.mark.timeout(PROPERTY_TIMEOUT)

KEY, USER, PASSWORD = "fuzz-api-key", "fuzz@example.com", "fuzz-api-password"
JSON_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "text/json",
    "Application/JSON; charset=UTF8",
)
OTHER_TYPES = (
    "text/plain",
    "application/xml",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    None,
)
ODD_CHARSETS = tuple(
    f"application/json; charset={name}" for name in ("latin-1", "utf-16", "punycode", "rot13", "x")
)
FIELDS = (
    "Name",
    "Type",
    "Email",
    "Address",
    "MetaData",
    "Number",
    "ArchivedAt",
    "Id",
    "type",
    "ADDRESS",
    "Tel1",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """One unthrottled sandbox for the module, with credentials of its own."""
    config = SandboxConfig(
        port=0,
        db_path=tmp_path_factory.mktemp("fuzz-sandbox") / "sandbox.sqlite",
        api_key=KEY,
        user=USER,
        api_password=PASSWORD,
        endpoint_limit=100_000,
        user_limit=100_000,
        key_limit=100_000,
    )
    with SandboxServer(config) as running:
        yield running


def server_errors(server: SandboxServer) -> int:
    """How many requests the sandbox has answered with 500 so far."""
    stats = requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()
    return int(stats["by_status"].get("500", 0))


@pytest.fixture(autouse=True)
def stays_up(server: SandboxServer) -> Iterator[None]:
    """After the test: no request of it got a 500, and a normal create still works."""
    before = server_errors(server)
    yield
    assert server_errors(server) == before, "the sandbox answered 500"
    answer = send(server, "POST", json.dumps({"Name": "Max Mustermann"}).encode(), "application/json")
    assert answer.status_code == 200 and answer.json()["ErrorCode"] == 0, answer.text


def send(
    server: SandboxServer,
    method: str,
    body: bytes | Iterator[bytes] | None = None,
    content_type: str | None = None,
    *,
    path: str = "/customers",
    headers: dict[str, Any] | None = None,
    auth: bool = True,
) -> requests.Response:
    """One request to ``/api/v1{path}`` with the right credentials unless ``auth`` is off."""
    sent: dict[str, Any] = {"X-Billbee-Api-Key": KEY} if auth else {}
    if content_type is not None:
        sent["Content-Type"] = content_type
    sent.update(headers or {})
    credentials = (USER, PASSWORD) if auth else None
    url = f"{server.base_url}/api/v1{path}"
    return requests.request(method, url, data=body, headers=sent, auth=credentials, timeout=30)


def assert_model_state(answer: requests.Response) -> dict[str, list[str]]:
    """A 400 with ASP.NET's ``{"Message", "ModelState"}``, keys under ``model``."""
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    content = answer.json()
    assert content["Message"] == "The request is invalid."
    state: dict[str, list[str]] = content["ModelState"]
    assert state and all(key.startswith("model") for key in state)
    assert all(isinstance(text, str) for texts_ in state.values() for text in texts_)
    return state


def assert_billbee_answer(answer: requests.Response, *allowed: int) -> None:
    """One of the ``allowed`` statuses, in the shape Billbee answers it in."""
    assert answer.status_code in allowed, (answer.status_code, answer.text[:300])
    assert answer.headers["Content-Type"].startswith("application/json")
    if answer.status_code == 400:
        assert_model_state(answer)
    elif answer.status_code == 200:
        assert answer.json()["ErrorCode"] in (0, 11)
    else:
        assert isinstance(answer.json()["Message"], str)


@given(
    body=st.one_of(st.binary(min_size=1, max_size=300), texts(min_size=1, max_size=40).map(str.encode)),
    content_type=st.sampled_from(JSON_TYPES + OTHER_TYPES + ODD_CHARSETS),
)
def test_garbage_bodies_with_any_content_type(
    server: SandboxServer, body: bytes, content_type: str | None
) -> None:
    answer = send(server, "POST", body, content_type)
    if not body.strip():
        assert_model_state(answer)
    elif content_type in OTHER_TYPES:
        assert_billbee_answer(answer, 415)
    else:
        assert_billbee_answer(answer, 200, 400)


@given(value=st.one_of(json_values(), st.dictionaries(st.sampled_from(FIELDS), json_values(max_leaves=4))))
def test_any_json_is_bound_or_refused_with_model_state(server: SandboxServer, value: Any) -> None:
    answer = send(server, "POST", json.dumps(value).encode(), "application/json")
    assert_billbee_answer(answer, 200, 400)
    if not isinstance(value, dict):
        assert list(assert_model_state(answer)) == ["model"]


@given(body=flat_bodies(), cut=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_truncated_json_is_400(server: SandboxServer, body: dict[str, Any], cut: float) -> None:
    text = json.dumps(nested(body), ensure_ascii=False).encode()
    truncated = text[: max(1, int(cut * len(text)))]
    assert_billbee_answer(send(server, "POST", truncated, "application/json"), 400)


@given(body=flat_bodies(), junk=st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"]))
def test_invalid_utf8_is_400_naming_the_encoding(
    server: SandboxServer, body: dict[str, Any], junk: bytes
) -> None:
    text = json.dumps(nested(body), ensure_ascii=False).encode()
    answer = send(server, "POST", text[:-2] + junk + text[-2:], "application/json")
    assert "could not be decoded as UTF-8" in assert_model_state(answer)["model"][0]


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'[{"Name": "Max"}]',
        b"42",
        b"-1.5e300",
        b'"Max"',
        b"null",
        b"true",
        b'{"Name": NaN}',
        b'{"Type": ' + b"9" * 5000 + b"}",
        b'{"Type": "' + b"9" * 5000 + b'"}',
        b"[" * 10_000 + b"]" * 10_000,
        b"{" + b'"a":{' * 10_000 + b"}" * 10_001,
        b'{"Name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"Address": "Hauptstr. 1"}',
        b'{"MetaData": {"Value": "x"}}',
        b'{"Type": "\\ud800"}',
    ],
    ids=lambda body: body[:24].decode(),
)
def test_json_that_cannot_be_a_customer_is_400_model_state(server: SandboxServer, body: bytes) -> None:
    assert_model_state(send(server, "POST", body, "application/json"))


def test_lone_surrogates_are_read_as_replacement_characters(server: SandboxServer) -> None:
    body = b'{"Name": "M\\ud800x\\udc00", "Address": {"City": "\\udfff"}, "\\ud800": 1}'
    answer = send(server, "POST", body, "application/json")
    assert_billbee_answer(answer, 200)
    assert answer.json()["Data"]["Name"] == "M\ufffdx\ufffd"


def test_bodies_over_one_mebibyte_are_413_also_when_chunked(server: SandboxServer) -> None:
    filler = MAX_BODY_BYTES - len(b'{"Name":""}')
    exact = b'{"Name":"' + b"x" * filler + b'"}'
    assert len(exact) == MAX_BODY_BYTES
    assert_billbee_answer(send(server, "POST", exact, "application/json"), 200)
    assert_billbee_answer(send(server, "POST", exact + b" ", "application/json"), 413)
    chunks = iter([exact[: 1 << 19], exact[1 << 19 :], b" " * 10])  # no Content-Length
    assert_billbee_answer(send(server, "POST", chunks, "application/json"), 413)


def basic(raw: bytes) -> str:
    """An ``Authorization`` header carrying ``raw`` as its Basic credentials."""
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Billbee-Api-Key": KEY},
        {"X-Billbee-Api-Key": KEY, "Authorization": "Basic"},
        {"X-Billbee-Api-Key": KEY, "Authorization": "Basic !!!not-base64!!!"},
        {"X-Billbee-Api-Key": KEY, "Authorization": basic(b"no-colon-at-all")},
        {"X-Billbee-Api-Key": KEY, "Authorization": basic(f"{USER}:wrong".encode())},
        {"X-Billbee-Api-Key": KEY, "Authorization": basic(f"jürgen€@example.com:{PASSWORD}".encode())},
        {
            "X-Billbee-Api-Key": KEY,
            "Authorization": basic(f"jürgen@example.com:{PASSWORD}".encode("latin-1")),
        },
        {"X-Billbee-Api-Key": KEY, "Authorization": "Bearer " + PASSWORD},
        {"X-Billbee-Api-Key": KEY, "Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode()},
        {"Authorization": basic(f"{USER}:{PASSWORD}".encode())},
        {
            "X-Billbee-Api-Key": "schlüssel".encode("latin-1"),
            "Authorization": basic(f"{USER}:{PASSWORD}".encode()),
        },
    ],
)
def test_wrong_auth_is_401_and_creates_nothing(server: SandboxServer, headers: dict[str, Any]) -> None:
    before = requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()["customers"]
    answer = send(server, "POST", b'{"Name": "Max"}', "application/json", headers=headers, auth=False)
    assert_billbee_answer(answer, 401)
    assert requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()["customers"] == before


@given(
    header=st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
    )
)
def test_any_authorization_header_is_401(server: SandboxServer, header: str) -> None:
    headers = {"X-Billbee-Api-Key": KEY, "Authorization": header.strip().encode("latin-1")}
    answer = send(server, "GET", headers=headers, auth=False)
    assert_billbee_answer(answer, 401)


@given(
    segment=texts(min_size=1, max_size=12), method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])
)
def test_unknown_paths_are_404(server: SandboxServer, segment: str, method: str) -> None:
    answer = send(
        server, method, b"{}", "application/json", path=f"/no-such-resource/{quote(segment, safe='')}"
    )
    assert_billbee_answer(answer, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/customers"),
        ("PATCH", "/customers"),
        ("PUT", "/customers"),
        ("PROPFIND", "/customers"),
        ("OPTIONS", "/customers/1"),
        ("POST", "/customers/addresses/1"),
        ("GET", "/search"),
    ],
)
def test_unsupported_methods_are_405(server: SandboxServer, method: str, path: str) -> None:
    answer = send(server, method, b"{}", "application/json", path=path)
    assert_billbee_answer(answer, 405)
    assert method in answer.json()["Message"]


def test_a_made_up_method_is_refused_by_the_http_parser(server: SandboxServer) -> None:
    # uvicorn's httptools parser knows only registered methods: it answers 400 in plain
    # text itself (IIS would let ASP.NET answer 405). Still no 500, and the sandbox stays up.
    answer = send(server, "FROBNICATE", b"{}", "application/json")
    assert answer.status_code in (400, 405)


def test_a_body_shorter_than_its_content_length_does_not_take_the_sandbox_down(server: SandboxServer) -> None:
    host, port = server.config.host, server.config.port
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    head = (
        f"POST /api/v1/customers HTTP/1.1\r\nHost: {host}\r\nX-Billbee-Api-Key: {KEY}\r\n"
        f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(head.encode() + b'{"Name": "Ma')
        connection.shutdown(socket.SHUT_WR)
        connection.recv(65536)  # whatever comes, if anything
