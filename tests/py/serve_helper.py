"""Starting and talking to `tulu serve` in tests: a server on a loopback port the system
picks (--port 0, read from its first stdout line), killed when the `with` block ends; plain
HTTP through http.client with a timeout on every call."""

import http.client
import json
import os
import select
import signal
import subprocess
import time

TULU = os.environ.get("TULU_BIN", "tulu")


class Server:
    def __init__(self, model_dir, *args, start_timeout=60):
        self.cmd = [TULU, "serve", "-m", model_dir, "--port", "0", "-t", "2"] + list(args)
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + self.start_timeout
        line = b""
        while time.time() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                byte = os.read(self.proc.stdout.fileno(), 1)  # unbuffered: select sees the rest
                if not byte:
                    break
                line += byte
        text = line.decode()
        if "listening on http://127.0.0.1:" not in text:
            self.proc.kill()
            raise AssertionError(f"tulu serve did not start: {text!r} {self.proc.stderr.read().decode()}")
        self.port = int(text.split("127.0.0.1:")[1].split()[0])
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        return False

    def stop(self, timeout=60):
        """SIGTERM; returns (exit code, stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, self.proc.stderr.read().decode()

    def connection(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict, body bytes). body: dict/list → JSON, str/bytes → as is."""
        conn = self.connection(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def post(self, path, body, headers=None, timeout=60):
        status, _, data = self.request("POST", path, body, headers, timeout)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data

    def get(self, path, headers=None):
        status, _, data = self.request("GET", path, None, headers)
        return status, data

    def stream(self, path, body, timeout=120):
        """POSTs and returns the list of SSE data payloads (JSON-decoded, '[DONE]' as is)."""
        conn = self.connection(timeout)
        try:
            conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200, (resp.status, resp.read())
            assert resp.getheader("Content-Type", "").startswith("text/event-stream"), resp.getheaders()
            return parse_sse(resp.read().decode("utf-8"))
        finally:
            conn.close()


def parse_sse(text):
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), repr(block)
        payload = block[len("data: "):]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def make_model(path):
    """A tiny random model (tulu init), reused when present."""
    if not os.path.exists(os.path.join(path, "config.json")):
        subprocess.run([TULU, "init", "-o", path, "--preset", "tiny"], check=True, capture_output=True)
    return path
