"""Hostile and malformed requests: each gets a 4xx JSON answer naming the problem, never a 500."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

N_DB, D = 600, 32  # the served_files fixture's sizes
HEX = "00" * 4  # a valid 32-bit code

J = json.dumps
# (method, path, body bytes or None, content type, expected status)
FUZZ = [
    ("POST", "/api/search", b"", "application/json", 422),
    ("POST", "/api/search", b"{", "application/json", 400),
    ("POST", "/api/search", b"not json", "application/json", 400),
    ("POST", "/api/search", b"[]", "application/json", 422),
    ("POST", "/api/search", b"null", "application/json", 422),
    ("POST", "/api/search", b"42", "application/json", 422),
    ("POST", "/api/search", b'"id"', "application/json", 422),
    ("POST", "/api/search", J({"k": 10}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": 0, "code": HEX}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": 0, "k": 0}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": 0, "k": -5}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": 0, "k": 10**6}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": 0, "k": "10"}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": 0, "k": 10.5}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": 0, "k": True}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": 0, "k": None}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": -1}).encode(), "application/json", 404),
    ("POST", "/api/search", J({"id": N_DB}).encode(), "application/json", 404),
    ("POST", "/api/search", J({"id": 10**30}).encode(), "application/json", 404),
    ("POST", "/api/search", J({"id": "0"}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"id": 1.5}).encode(), "application/json", 422),
    ("POST", "/api/search", b'{"id": 1' + b"0" * 5000 + b"}", "application/json", 400),
    ("POST", "/api/search", J({"ids": []}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"ids": [1, 2, 1]}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"ids": [3, -3]}).encode(), "application/json", 404),
    (
        "POST",
        "/api/search",
        J({"ids": list(range(N_DB))[:5] * 0 + [0] * 2000}).encode(),
        "application/json",
        422,
    ),
    ("POST", "/api/search", J({"vector": [1.0, 2.0, 3.0]}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"vector": []}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"vector": ["a"] * D}).encode(), "application/json", 422),
    ("POST", "/api/search", b'{"vector": [NaN' + b", 0" * (D - 1) + b"]}", "application/json", 422),
    (
        "POST",
        "/api/search",
        b'{"vector": [Infinity' + b", 0" * (D - 1) + b"]}",
        "application/json",
        422,
    ),
    ("POST", "/api/search", J({"vector": [1e308] * D}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"vector": 3}).encode(), "application/json", 422),
    (
        "POST",
        "/api/search",
        J({"vectors": [[0.0] * D, [0.0] * (D - 1)]}).encode(),
        "application/json",
        422,
    ),
    ("POST", "/api/search", J({"vectors": []}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"vectors": [[0.0] * D] * 2000}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"code": "zz"}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"code": "00"}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"code": 12}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"index": "nope", "id": 0}).encode(), "application/json", 404),
    ("POST", "/api/search", J({"index": 5, "id": 0}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"extra": 1, "id": 0}).encode(), "application/json", 422),
    ("POST", "/api/search", J({"text": "a dog"}).encode(), "application/json", 422),
    ("POST", "/api/search", b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    ("POST", "/api/search", b"[" * 600_000 + b"]" * 600_000, "application/json", 413),
    ("POST", "/api/search", b"\xff\xfe\x00{", "application/json", 400),
    ("POST", "/api/search", J({"id": 0}).encode(), "text/plain", 422),
    ("POST", "/api/search", b" " * (2 << 20), "application/json", 413),
    ("GET", "/api/search", None, None, 405),
    ("DELETE", "/api/indexes", None, None, 405),
    ("GET", "/api/items/abc", None, None, 422),
    ("GET", "/api/items/-1", None, None, 404),
    ("GET", "/api/items/999999", None, None, 404),
    ("GET", "/api/items/1/image", None, None, 404),
    ("GET", "/api/items/99999999999999999999999", None, None, 404),
    ("GET", "/nope", None, None, 404),
    ("GET", "/static/../pyproject.toml", None, None, 404),
]


def _request(
    url: str,
    method: str,
    path: str,
    body: bytes | None,
    ctype: str | None,
    *,
    chunked: bool = False,
):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {} if ctype is None else {"Content-Type": ctype}
    if chunked:
        conn.putrequest(method, path)
        for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
            conn.putheader(name, value)
        conn.endheaders()
        for i in range(0, len(body), 65536):
            piece = body[i : i + 65536]
            try:
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered early and closed
        else:
            conn.send(b"0\r\n\r\n")
    else:
        conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    status, data, ctype_out = response.status, response.read(), response.getheader("content-type")
    conn.close()
    return status, data, ctype_out


def _check_answer(status, data, ctype, expected):
    assert status == expected, (status, data[:300])
    assert ctype == "application/json"
    detail = json.loads(data)["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail
    assert "Traceback" not in detail


def test_fuzz_list_is_long_enough():
    assert len(FUZZ) >= 30


@pytest.mark.parametrize("case", FUZZ, ids=[f"{i}-{c[0]}-{c[1]}" for i, c in enumerate(FUZZ)])
def test_malformed_request_gets_a_4xx_json_error(files_server, case):
    method, path, body, ctype, expected = case
    _check_answer(*_request(files_server.url, method, path, body, ctype), expected)


def test_chunked_body_over_the_limit_is_refused(files_server):
    """No Content-Length: the limit counts the bytes as they arrive."""
    body = b'{"vector": [' + b"0.0, " * 400_000 + b"0.0]}"
    _check_answer(
        *_request(files_server.url, "POST", "/api/search", body, "application/json", chunked=True),
        413,
    )


def test_messages_name_the_problem(files_server):
    from h2q.serve.launch import post_json

    url = files_server.url + "/api/search"
    cases = {
        "unknown index 'nope'; choose one of q.": {"index": "nope", "id": 0},
        "a vector has 3 values, but index 'q' takes 32; pass vectors of length 32.": {
            "vector": [1.0, 2.0, 3.0]
        },
        "k=0 is below 1; pass k >= 1.": {"id": 0, "k": 0},
        "unknown id 600: the index holds ids 0 to 599; pass one of those.": {"id": 600},
        "id 1 appears twice in ids; pass each id once.": {"ids": [1, 2, 1]},
    }
    for message, body in cases.items():
        assert post_json(url, body)[1]["detail"] == message


def test_server_still_answers_after_the_fuzz(files_server):
    from h2q.serve.launch import post_json

    status, body = post_json(files_server.url + "/api/search", {"id": 3, "k": 2})
    assert status == 200 and body["results"][0]["ids"][0] == 3
