"""The benchmark's Granian subject (issue 16's TLS scenarios): an RSGI app
that answers every request with the body and Content-Type of ferricorn's
`hello` example (examples/hello.rs), so that the TLS and HTTP layers are
what is compared. Served by `granian --interface rsgi granian_hello:app`.
"""

BODY = b"Hello, World!\n"
HEADERS = [("content-type", "text/plain; charset=utf-8")]


async def app(scope, proto):
    proto.response_bytes(200, HEADERS, BODY)
