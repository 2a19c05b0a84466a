"""Shared helpers of the server tests: start `vkflow serve` on a free
loopback port, plain HTTP requests, and a minimal websocket client written
on top of socket (stdlib only)."""
import base64
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

HOST = "127.0.0.1"


class Checker:
    def __init__(self, name):
        self.name, self.failures, self.checks = name, 0, 0

    def __call__(self, cond, what):
        self.checks += 1
        if not cond:
            self.failures += 1
            print("FAIL:", what, file=sys.stderr, flush=True)
        return cond

    def done(self):
        print(f"{self.name}: {self.checks} checks, {self.failures} failed", file=sys.stderr)
        print(f"{self.checks - self.failures} passed, {self.failures} failed")
        sys.exit(1 if self.failures else 0)


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """`vkflow serve` in a temporary directory with input/output/temp/models."""

    def __init__(self, exe, *extra, root=None):
        self.root = root or tempfile.mkdtemp(prefix="vkf-srv-")
        for d in ("input", "output", "temp", "models/checkpoints", "models/embeddings"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        self.stderr_lines = []
        for _attempt in range(5):
            self.port = free_port()
            args = [exe, "--port", str(self.port),
                    "--input", os.path.join(self.root, "input"),
                    "--output", os.path.join(self.root, "output"),
                    "--temp", os.path.join(self.root, "temp"),
                    "--models", os.path.join(self.root, "models"), *extra]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         text=True)
            ready = threading.Event()

            def pump(proc=self.proc, ready=ready):
                for line in proc.stderr:
                    self.stderr_lines.append(line)
                    if "listening on" in line:
                        ready.set()
                ready.set()

            self.pump = threading.Thread(target=pump, daemon=True)
            self.pump.start()
            ready.wait(20)
            if self.proc.poll() is None:
                return
        raise RuntimeError("server did not start:\n" + "".join(self.stderr_lines))

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def stop(self, sig=15, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None
        self.pump.join(5)
        return rc


def request(port, method, path, body=None, headers=None, timeout=30):
    """Returns (status, headers dict (lower-case), body bytes)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    hdrs = dict(headers or {})
    if body is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    conn.close()
    return out


def get_json(port, path, **kw):
    status, _, data = request(port, "GET", path, **kw)
    return status, (json.loads(data) if data else None)


def post_json(port, path, obj, **kw):
    status, _, data = request(port, "POST", path, obj, **kw)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, data


def multipart(fields, files):
    """fields: {name: value}; files: {name: (filename, bytes)}."""
    boundary = "vkfboundary" + os.urandom(8).hex()
    out = []
    for k, v in fields.items():
        out.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode())
    for k, (fn, data) in files.items():
        out.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{fn}\"\r\n"
                   f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


class WSClosed(Exception):
    pass


class WS:
    """A websocket client: text frames as parsed JSON, binary as bytes."""

    def __init__(self, port, client_id=None, query="", headers=None, timeout=10):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        q = {}
        if client_id is not None:
            q["clientId"] = client_id
        qs = urllib.parse.urlencode(q)
        if query:
            qs = qs + ("&" if qs else "") + query
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        req = (f"GET /ws{'?' + qs if qs else ''} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n{extra}\r\n")
        self.sock.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WSClosed("closed during handshake")
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        self.partial, self.partial_op = b"", 1
        self.status = int(head.split(b" ")[1])
        if self.status != 101:
            raise WSClosed(f"handshake refused: {head[:60]!r}")
        self.sid = None

    def _frame(self):
        """One whole frame parsed off the buffer, or None if incomplete."""
        b = self.buf
        if len(b) < 2:
            return None
        fin, opcode, ln, pos = b[0] & 0x80, b[0] & 0x0F, b[1] & 0x7F, 2
        if ln == 126:
            if len(b) < 4:
                return None
            ln, pos = struct.unpack(">H", b[2:4])[0], 4
        elif ln == 127:
            if len(b) < 10:
                return None
            ln, pos = struct.unpack(">Q", b[2:10])[0], 10
        if len(b) < pos + ln:
            return None
        self.buf = b[pos + ln:]
        return fin, opcode, b[pos:pos + ln]

    def recv(self, timeout=10):
        """The next message; a timeout leaves partial data buffered."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame()
            if frame is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    raise TimeoutError
                if not chunk:
                    raise WSClosed("connection closed")
                self.buf += chunk
                continue
            fin, opcode, data = frame
            if opcode == 8:
                raise WSClosed("close frame")
            if opcode == 9:
                self._send(10, data)
                continue
            if opcode == 10:
                continue
            if opcode == 0:
                self.partial += data
            else:
                self.partial_op, self.partial = opcode, data
            if not fin:
                continue
            payload, op = self.partial, self.partial_op
            self.partial = b""
            if op == 1:
                msg = json.loads(payload.decode())
                if msg.get("type") == "status" and "sid" in msg.get("data", {}):
                    self.sid = msg["data"]["sid"]
                return msg
            return payload

    def _send(self, opcode, data):
        mask = os.urandom(4)
        hdr = bytes([0x80 | opcode])
        n = len(data)
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def send_json(self, obj):
        self._send(1, json.dumps(obj).encode())

    def drain(self, seconds):
        """Every message that arrives within `seconds`."""
        out, end = [], time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.recv(left))
            except TimeoutError:
                return out

    def until(self, pred, timeout=20):
        """Messages up to and including the first one pred() accepts."""
        out, end = [], time.monotonic() + timeout
        while True:
            m = self.recv(max(0.01, end - time.monotonic()))
            out.append(m)
            if pred(m):
                return out

    def close(self):
        try:
            self._send(8, b"\x03\xe8")
        except OSError:
            pass
        self.sock.close()


def finished(prompt_id):
    """The "prompt finished" signal: executing with node null."""
    return lambda m: (isinstance(m, dict) and m.get("type") == "executing"
                      and m["data"].get("node") is None and m["data"].get("prompt_id") == prompt_id)


def text_prompt(text, out_id="2"):
    return {"1": {"class_type": "PrimitiveString", "inputs": {"value": text}},
            out_id: {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}


def slow_prompt(steps, ms):
    """Slow and interruptible; vary steps or ms to dodge the cache."""
    return {"1": {"class_type": "TestSlowSteps", "inputs": {"steps": steps, "ms_per_step": ms}},
            "3": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}


def png_encode(width, height, pixels, channels, text=None):
    """8-bit RGB (channels 3) or RGBA (4) PNG; pixels is bytes, row-major."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ctype = {3: 2, 4: 6}[channels]
    raw = b"".join(b"\0" + pixels[y * width * channels:(y + 1) * width * channels]
                   for y in range(height))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, ctype,
                                                               0, 0, 0))
    for k, v in (text or {}).items():
        out += chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1"))
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_decode(data):
    """(width, height, channels, pixels, text) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, text = 8, b"", {}
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6) and body[12] == 0
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt":
            k, v = body.split(b"\0", 1)
            text[k.decode("latin-1")] = v.decode("latin-1")
    ch = 3 if ctype == 2 else 4
    raw, stride, out, prev = zlib.decompress(idat), w * ch, bytearray(), bytearray(w * ch)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 255
        out += line
        prev = line
    return w, h, ch, bytes(out), text
