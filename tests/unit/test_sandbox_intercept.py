"""The sandbox server's interceptors: tests hook its request path without replacing methods."""

from __future__ import annotations

from dialsync.sandbox.server import Handler, Interceptor, Request, Response, SandboxServer


def _request(path: str = "/x") -> Request:
    return Request(method="GET", path=path, query={}, headers={}, body=b"")


def _server() -> SandboxServer:
    server = SandboxServer()
    server.add_route("GET", "/x", lambda _r: Response(200, {"from": "route"}))
    return server


def test_the_last_installed_interceptor_sees_a_request_first() -> None:
    server = _server()
    order: list[str] = []

    def tag(name: str) -> Interceptor:
        def interceptor(request: Request, call_next: Handler) -> Response:
            order.append(f"{name} in")
            response = call_next(request)
            order.append(f"{name} out")
            return response

        return interceptor

    server.intercept(tag("first"))
    server.intercept(tag("second"))
    assert server.handle(_request()).body == {"from": "route"}
    assert order == ["second in", "first in", "first out", "second out"]


def test_an_interceptor_may_answer_alone_or_change_the_request() -> None:
    server = _server()
    with server.intercept(lambda _r, _next: Response(503)):
        assert server.handle(_request()).status == 503
    assert server.handle(_request()).status == 200  # removed at the end of the block

    def reroute(request: Request, call_next: Handler) -> Response:
        request.path = "/x"
        return call_next(request)

    interception = server.intercept(reroute)
    assert server.handle(_request("/elsewhere")).status == 200
    interception.remove()
    assert server.handle(_request("/elsewhere")).status == 404


def test_interceptors_wrap_before_request_faults() -> None:
    server = _server()
    server.before_request = lambda _r: Response(429)
    seen: list[int] = []

    def watch(request: Request, call_next: Handler) -> Response:
        response = call_next(request)
        seen.append(response.status)
        return response

    server.intercept(watch)
    assert server.handle(_request()).status == 429 and seen == [429]
