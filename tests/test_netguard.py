"""The network guard itself: loopback works, anything else fails loudly with the address."""
from __future__ import annotations

import socket
import threading

import pytest

from tests.netguard import NetworkCallInTest, is_loopback


def test_loopback_names_and_addresses():
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", None, "0.0.0.0"):
        assert is_loopback(host), host
    for host in ("8.8.8.8", "api.telegram.org", "discord.com", "10.0.0.1", "2001:4860:4860::8888"):
        assert not is_loopback(host), host


def test_outside_connects_and_lookups_are_refused():
    with pytest.raises(NetworkCallInTest, match="api.telegram.org"):
        socket.getaddrinfo("api.telegram.org", 443)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkCallInTest, match="192.0.2.1"):  # TEST-NET-1: never routable anyway
            s.connect(("192.0.2.1", 443))
        with pytest.raises(NetworkCallInTest):
            s.connect_ex(("192.0.2.1", 443))
    finally:
        s.close()


def test_a_loopback_server_still_works():
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    got: list[bytes] = []

    def serve():
        conn, _ = srv.accept()
        with conn:
            got.append(conn.recv(5))

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"hello")
    t.join(5)
    srv.close()
    assert got == [b"hello"]
