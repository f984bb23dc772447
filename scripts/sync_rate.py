#!/usr/bin/env python3
"""How slow syncs on this VM depend on how many a second are made: a
400-byte write + fdatasync paced at several rates for 6 s each, with one core
kept busy by a spinning shell (as the ingest bench at half load keeps about
one of the two busy). Prints, per rate, how many syncs took over 2 / 5 / 10 ms
and the time spent in those over 2 ms. On the development VM the slow syncs
jump between 2,000 and 3,000 a second (from about 4 ms a second to 100-150),
which is why the queue gathers many requests per sync rather than fewer.
Run: python3 scripts/sync_rate.py (about 40 s, under target/)."""
import os
import subprocess
import time

SECONDS, SIZE = 6.0, 400


def run(rate):
    path = "target/sync-rate.bin"
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY)
    os.posix_fallocate(fd, 0, 64 << 20)
    os.fsync(fd)
    lat = []
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < SECONDS:
        due = start + n / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        t = time.perf_counter()
        os.write(fd, b"x" * SIZE)
        os.fdatasync(fd)
        lat.append(time.perf_counter() - t)
        n += 1
    os.close(fd)
    os.unlink(path)
    over = lambda ms: sum(1 for x in lat if x > ms / 1e3) / SECONDS
    slow = sum(x for x in lat if x > 0.002) / SECONDS * 1e3
    print(f"{rate:>5} syncs/s asked, {len(lat) / SECONDS:>5.0f} made: over 2 ms {over(2):5.1f}/s, "
          f"over 5 ms {over(5):5.1f}/s, over 10 ms {over(10):5.1f}/s; "
          f"in syncs over 2 ms {slow:5.1f} ms per second")


os.makedirs("target", exist_ok=True)
spinner = subprocess.Popen(["sh", "-c", "while :; do :; done"])
try:
    for rate in (500, 1000, 2000, 3000, 4000, 1000):
        run(rate)
finally:
    spinner.kill()
