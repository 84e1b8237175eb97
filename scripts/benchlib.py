"""What the benchmark scripts share: a minimal LSP client over a server's
stdio, LSP positions, percentiles, and the registry package they type in.
Standard library only."""

import json
import os
import queue
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path

CACHE = Path(os.environ.get("INFILL_CACHE", Path.home() / ".cache" / "infill"))


def fetch_source(package, file):
    """The source tree of `package` (name, version) holding `file`: the
    cross-file eval's cache if it is there, else its sdist from PyPI (pip
    download; nothing is built)."""
    for base in (CACHE / "cross-eval" / "python" / package[0], CACHE / "bench" / package[0]):
        if (base / file).is_file():
            return base
    dest = CACHE / "bench" / package[0]
    tmp = CACHE / "bench" / "download"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    subprocess.run(
        ["pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
         "--dest", str(tmp), f"{package[0]}=={package[1]}"],
        check=True,
    )
    (sdist,) = tmp.glob("*.tar.gz")
    part = dest.with_suffix(".part")
    shutil.rmtree(part, ignore_errors=True)
    with tarfile.open(sdist) as t:
        t.extractall(part, filter="data")
    (inner,) = part.iterdir()
    inner.rename(dest)
    shutil.rmtree(part)
    return dest


class Lsp:
    """A minimal LSP client over the server's stdio."""

    def __init__(self, args, stderr=subprocess.DEVNULL):
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr)
        self.inbox = queue.Queue()
        self.next_id = 1
        self.send_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.received(json.loads(out.read(length)))

    def received(self, msg):
        """Called on the reader thread for each message from the server."""
        self.inbox.put(msg)

    def send(self, msg):
        body = json.dumps(msg).encode()
        with self.send_lock:  # the reader thread may answer the server's requests
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params, timeout=600):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            msg = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            if msg.get("id") == rid and "method" not in msg:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result")
            if "method" in msg and "id" in msg:  # a request to the client
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})

    def rss(self):
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
        return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}

    def close(self):
        try:
            self.request("shutdown", None, timeout=30)
            self.notify("exit", None)
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()


def position(text):
    """LSP position (UTF-16) of the end of `text`."""
    line = text.count("\n")
    last = text[text.rfind("\n") + 1:]
    return {"line": line, "character": len(last.encode("utf-16-le")) // 2}


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]
