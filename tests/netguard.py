"""The suite's promise "tests make no network calls", enforced rather than hoped for.

Every test runs with socket connects and name lookups limited to the loopback interface: the Bot API
stand-in, simcord and the rpyc bridge all listen on 127.0.0.1, so a library that quietly phones home
(an update check, a real api.telegram.org because a base_url was forgotten) fails the test with the
address it tried, instead of passing on a machine that happens to be online.
"""
from __future__ import annotations

import ipaddress
import socket

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class NetworkCallInTest(RuntimeError):
    pass


def is_loopback(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): a local bind
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    text = str(host).strip("[]").split("%", 1)[0]
    if text.lower() in LOOPBACK_NAMES or text in ("", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def install(monkeypatch) -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def _check(sock: socket.socket, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) \
                and not is_loopback(address[0]):
            raise NetworkCallInTest(f"a test tried to connect to {address!r}; tests make no network calls")

    def connect(self, address):
        _check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        _check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not is_loopback(host):
            raise NetworkCallInTest(f"a test tried to resolve {host!r}; tests make no network calls")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
