"""The WSGI hello world Gunicorn's sync and gthread subjects serve:
`gunicorn wsgi_hello:app`."""

BODY = b"Hello, World!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
