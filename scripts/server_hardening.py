#!/usr/bin/python3
"""Measures the hardening figures of `quiver serve` against a running binary (issue 10).

  scripts/server_hardening.py [--bin build/release/bin/quiver] [--threads 4] [--skip-body]

Starts its own server on a free loopback port with a fresh data directory and prints, for that binary:
  - /healthz and search latency (median, p99, max) alone, then while 64 slow-loris and 256 idle
    connections are held open;
  - what 300 MB of request headers does (status, bytes the server took, RSS growth);
  - the peak RSS growth of one 64 MiB upsert body (about 10,000 documents with 768-d vectors);
  - `curl -d` of a 1 MB JSON body with and without `-H 'Content-Type: application/json'`,
    and `curl -X POST .../flush` with no body;
  - the exit code of a second server on the same port.
Timings are whatever this machine gives (shared machines: provisional). Run it with --bin of an older
build for the before/after comparison.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
DIM = 768  # 10,000 documents of 768-d vectors as JSON text fill a 64 MiB body


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def request(port, method, path, body=b"", headers=None, timeout=30.0):
    """One request on a fresh connection; returns (status, body bytes, seconds)."""
    t0 = time.perf_counter()
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        h = {"Host": f"{HOST}:{port}", "Connection": "close"}
        if body or method in ("POST", "PUT"):
            h["Content-Length"] = str(len(body))
        if body:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        s.sendall(head.encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
        return status, data.split(b"\r\n\r\n", 1)[-1], time.perf_counter() - t0
    except OSError:
        return 0, b"", time.perf_counter() - t0
    finally:
        s.close()


def latencies(port, seconds, search_body):
    out = {"healthz": [], "search": [], "failures": 0}
    end = time.time() + seconds
    while time.time() < end:
        st, _, dt = request(port, "GET", "/healthz", timeout=10)
        out["healthz"].append(dt * 1000)
        out["failures"] += st != 200
        st, _, dt = request(port, "POST", "/collections/c/search", search_body, timeout=10)
        out["search"].append(dt * 1000)
        out["failures"] += st != 200
    return out


def summary(ms):
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    return f"n={len(ms)} median {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms"


def start_server(binary, data, threads, extra=()):
    p = subprocess.Popen([binary, "serve", "--data", data, "--port", "0", "--threads", str(threads), *extra],
                         stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        sys.exit(f"server did not start: {line}")
    threading.Thread(target=lambda: p.stderr.read(), daemon=True).start()
    return p, int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/release/bin/quiver")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--skip-body", action="store_true", help="skip the 64 MiB body")
    ap.add_argument("--wrk", action="store_true", help="also: wrk -t2 -c64 on search and /healthz (needs wrk)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="quiver-hardening-")
    proc, port = start_server(args.bin, os.path.join(tmp, "data"), args.threads)
    try:
        schema = {"fields": [{"name": "body", "type": "text"},
                             {"name": "emb", "type": "vector", "dim": DIM, "metric": "ip", "index": "flat"}]}
        assert request(port, "PUT", "/collections/c", json.dumps(schema).encode())[0] == 201
        docs = [{"id": f"d{i}", "body": f"document number {i} about apples"} for i in range(1000)]
        assert request(port, "POST", "/collections/c/documents", json.dumps(docs).encode())[0] == 200
        search = json.dumps({"field": "body", "text": "apples number 7", "k": 10}).encode()
        print(f"binary {args.bin}, --threads {args.threads}, pid {proc.pid}")
        quiet = latencies(port, args.seconds, search)
        print(f"alone:   healthz {summary(quiet['healthz'])}; search {summary(quiet['search'])}")

        held, stop = [], threading.Event()
        for _ in range(256):
            held.append(socket.create_connection((HOST, port)))
        loris = []
        for _ in range(64):
            s = socket.create_connection((HOST, port))
            s.sendall(b"POST /collections/c/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n")
            loris.append(s)

        def trickle():
            while not stop.wait(1.0):
                for s in loris:
                    try:
                        s.sendall(b"X-a: b\r\n")
                    except OSError:
                        pass
        threading.Thread(target=trickle, daemon=True).start()
        time.sleep(0.5)
        busy = latencies(port, args.seconds, search)
        print(f"held (64 slow-loris + 256 idle): healthz {summary(busy['healthz'])}; "
              f"search {summary(busy['search'])}; failures {busy['failures']}")
        stop.set()
        for s in held + loris:
            s.close()

        before = rss_kb(proc.pid)
        s = socket.create_connection((HOST, port), timeout=60)
        s.sendall(b"GET /collections HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        line = b"X-Pad: " + b"p" * 1000 + b"\r\n"
        chunk = line * 1024
        sent, t0 = 0, time.time()
        try:
            while sent < 300 << 20:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        s.settimeout(5)
        try:
            reply = s.recv(200)
        except OSError:
            reply = b""
        s.close()
        status = reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/") else "none (closed)"
        print(f"300 MB of headers: server took {sent / 2**20:.1f} MiB in {time.time() - t0:.2f} s, reply {status}, "
              f"RSS {before} -> {rss_kb(proc.pid)} kB")

        if not args.skip_body:
            vec = "[" + ",".join(f"{(i % 97) / 97:.6f}" for i in range(DIM)) + "]"
            parts, size, i = [], 0, 0
            while size < (64 << 20) - 8000 and i < 10000:
                d = f'{{"id":"big{i}","body":"x","emb":{vec}}}'
                parts.append(d)
                size += len(d) + 1
                i += 1
            body = ("[" + ",".join(parts) + "]").encode()
            with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
                f.write("5")
            base = rss_kb(proc.pid)
            probes, done = [], threading.Event()

            def probe():  # /healthz while the big upsert runs (it holds one request worker)
                while not done.is_set():
                    probes.append(request(port, "GET", "/healthz", timeout=30)[2] * 1000)
                    time.sleep(0.01)
            prober = threading.Thread(target=probe)
            prober.start()
            st, resp, dt = request(port, "POST", "/collections/c/documents", body, timeout=600)
            done.set()
            prober.join()
            peak = rss_kb(proc.pid, "VmHWM")
            print(f"{len(body) / 2**20:.1f} MiB upsert ({i} docs x {DIM}-d): status {st} in {dt:.1f} s, "
                  f"peak RSS growth {(peak - base) / 1024:.0f} MiB ({resp[:80]!r}); "
                  f"/healthz meanwhile: {summary(probes)}")

        if shutil.which("curl"):
            payload = os.path.join(tmp, "1mb.json")
            with open(payload, "w") as f:
                json.dump([{"id": f"m{i}", "body": "y" * 1000} for i in range(1000)], f)
            base = f"http://{HOST}:{port}/collections/c"
            for label, extra in (("curl -d (default type)", []),
                                 ("curl -d -H 'Content-Type: application/json'", ["-H", "Content-Type: application/json"])):
                code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-d", "@" + payload,
                                       *extra, base + "/documents"], capture_output=True, text=True).stdout
                print(f"{label}, {os.path.getsize(payload)} bytes: {code}")
            code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", base + "/flush"],
                                  capture_output=True, text=True).stdout
            print(f"curl -X POST .../flush (no body): {code}")

        if args.wrk and shutil.which("wrk"):
            lua = os.path.join(tmp, "search.lua")
            with open(lua, "w") as f:
                f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                        f"wrk.body = '{search.decode()}'\n")
            for label, extra, path in (("search", ["-s", lua], "/collections/c/search"), ("healthz", [], "/healthz")):
                out = subprocess.run(["wrk", "-t2", "-c64", "-d10s", "--latency", *extra, f"http://{HOST}:{port}{path}"],
                                     capture_output=True, text=True).stdout
                rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
                p99 = re.search(r"99%\s+(\S+)", out)
                print(f"wrk -t2 -c64 {label}: {rps.group(1) if rps else '?'} req/s, p99 {p99.group(1) if p99 else '?'}")

        second = subprocess.run([args.bin, "serve", "--data", os.path.join(tmp, "data2"), "--port", str(port)],
                                capture_output=True, text=True, timeout=10) if True else None
        print(f"second server on port {port}: exit {second.returncode}: {second.stderr.strip()[:120]}")
    except subprocess.TimeoutExpired:
        print(f"second server on the used port did not exit within 10 s (it is serving)")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
