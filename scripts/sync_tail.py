#!/usr/bin/env python3
"""Latency of a 400-byte write + fdatasync on this disk, idle and with both
cores kept busy by two spinning shells: what the ingest p99 at half load is
bounded by. Run: python3 scripts/sync_tail.py (about 10 s, under target/)."""
import os
import subprocess
import time

N, SIZE = 6000, 400


def run(label):
    path = "target/sync-tail.bin"
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY)
    os.write(fd, b"\0" * (N * SIZE + 4096))
    os.fsync(fd)
    os.lseek(fd, 0, 0)
    lat = []
    for _ in range(N):
        t = time.perf_counter()
        os.write(fd, b"x" * SIZE)
        os.fdatasync(fd)
        lat.append(time.perf_counter() - t)
    os.close(fd)
    os.unlink(path)
    lat.sort()
    ms = lambda q: lat[min(N - 1, int(N * q))] * 1e3
    print(f"{label:<22} p50 {ms(0.5):.3f} ms  p99 {ms(0.99):.3f} ms  p99.9 {ms(0.999):.3f} ms  "
          f"over 2 ms: {sum(1 for x in lat if x > 0.002)} of {N}")


os.makedirs("target", exist_ok=True)
run("idle")
spinners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)]
try:
    run("both cores busy")
finally:
    for s in spinners:
        s.kill()
