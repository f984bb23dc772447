#!/usr/bin/env python3
"""Whether this machine stops running its processes when cores are busy and a
disk is syncing. Spinners (one process per core) run for 3 s and record every
gap of more than 3 ms in their own progress: once alone, then while another
process writes 4,400 bytes + fdatasync in a loop, at each given rate (0: as
fast as it can), into a file whose blocks were written ahead ("written") and
into one allocated ahead with posix_fallocate ("allocated", as the queue log
is).

On the development VM the cores stop together for 10-18 ms about every
100 ms once busy cores and syncs together pass a threshold: two busy cores
and 500 syncs/s, one busy core and 2,000 syncs/s allocated (3,000 written).
Most likely the host throttles the VM when its cores and its disk I/O
together use up its CPU share; no code in the guest can avoid it, only stay
under it.

Each sync line also gives the syncs' p50: `0 0` compares written and
allocated space on an idle machine.

Run: python3 scripts/vm_stalls.py [SPINNERS [RATE ...]]
(default: 2 spinners, rate 0; about 10 s per rate, under target/)."""
import multiprocessing as mp
import os
import sys
import time

SECONDS, GAP, SIZE = 3.0, 0.003, 4400
PATH = "target/vm-stalls.bin"


def spin(out):
    start = last = time.perf_counter()
    gaps = []
    while last - start < SECONDS:
        now = time.perf_counter()
        if now - last > GAP:
            gaps.append((last, now))
        last = now
    out.put(gaps)


def sync_loop(kind, rate, out):
    fd = os.open(PATH, os.O_CREAT | os.O_TRUNC | os.O_WRONLY)
    ahead = 64 << 20
    if kind == "written":
        os.write(fd, b"\0" * ahead)
    else:
        os.posix_fallocate(fd, 0, ahead)
    os.fsync(fd)
    os.lseek(fd, 0, 0)
    time.sleep(0.5)
    out.put("ready")
    start = time.perf_counter()
    took = []
    while time.perf_counter() - start < SECONDS:
        t = time.perf_counter()
        os.write(fd, b"x" * SIZE)
        os.fdatasync(fd)
        took.append(time.perf_counter() - t)
        n = len(took)
        if rate:
            wait = start + n / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
    os.close(fd)
    os.unlink(PATH)
    took.sort()
    out.put((len(took), took[len(took) // 2], sum(1 for t in took if t > 0.002)))


def run(spinners, kind=None, rate=0):
    out, synced = mp.Queue(), mp.Queue()
    syncer = None
    if kind:
        syncer = mp.Process(target=sync_loop, args=(kind, rate, synced))
        syncer.start()
        synced.get()
    procs = [mp.Process(target=spin, args=(out,)) for _ in range(spinners)]
    for p in procs:
        p.start()
    per = [out.get() for _ in procs]
    for p in procs:
        p.join()
    label = f"{spinners} spinners"
    if syncer:
        n, p50, slow = synced.get()
        syncer.join()
        label += f" + syncs, {kind}, rate {rate or 'max'}"
        label = (f"{label:<44} {n / SECONDS:6.0f} syncs/s (p50 {p50 * 1e3:.3f} ms), "
                 f"{slow:3} over 2 ms;")
    gaps = [e - s for g in per for s, e in g]
    line = f"{label:<44} gaps per spinner {len(gaps) / max(1, spinners):5.1f}"
    if spinners == 2:
        # A gap of one spinner that overlaps one of the other: both stopped.
        a, b = per
        both = sum(1 for s1, e1 in a if any(s2 < e1 and s1 < e2 for s2, e2 in b))
        line += f" ({both} on both cores at once)"
    print(f"{line}, stopped {sum(gaps) * 1e3 / max(1, spinners):6.1f} ms of {SECONDS * 1e3:.0f}",
          flush=True)


if __name__ == "__main__":
    os.makedirs("target", exist_ok=True)
    spinners = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    rates = [int(r) for r in sys.argv[2:]] or [0]
    run(spinners)
    for rate in rates:
        for kind in ("written", "allocated"):
            run(spinners, kind, rate)
