#!/usr/bin/env python3
"""Whether this machine stops running its processes when the cores are busy
and a disk is syncing: two processes spin for 3 s, one per core, and record
every gap of more than 3 ms in their own progress; once alone, once while a
third process appends 400 bytes + fdatasync in a loop. On the development VM
the second run shows both cores stopped together for 10-18 ms about every
100 ms (most likely the host throttling the VM once its busy cores and its
disk I/O together use up its CPU share), which no code in the guest can
avoid.
Run: python3 scripts/vm_stalls.py (about 10 s, under target/)."""
import multiprocessing as mp
import os
import time

SECONDS, GAP = 3.0, 0.003


def spin(out):
    start = last = time.perf_counter()
    gaps = []
    while last - start < SECONDS:
        now = time.perf_counter()
        if now - last > GAP:
            gaps.append((last, now))
        last = now
    out.put(gaps)


def sync_loop(path):
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY)
    start = time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        os.write(fd, b"x" * 400)
        os.fdatasync(fd)
    os.close(fd)
    os.unlink(path)


def run(label, with_sync):
    out = mp.Queue()
    procs = [mp.Process(target=spin, args=(out,)) for _ in range(2)]
    if with_sync:
        procs.append(mp.Process(target=sync_loop, args=("target/vm-stalls.bin",)))
    for p in procs:
        p.start()
    a, b = out.get(), out.get()
    for p in procs:
        p.join()
    lengths = sorted(end - start for start, end in a + b)
    worst = f"{lengths[-1] * 1e3:.1f} ms" if lengths else "-"
    # A gap of one spinner that overlaps one of the other: both cores stopped.
    both = sum(1 for s1, e1 in a if any(s2 < e1 and s1 < e2 for s2, e2 in b))
    print(f"{label:<34} gaps over 3 ms per spinner {len(lengths) / 2:5.1f}, "
          f"{both} of them on both cores at once; stopped {sum(lengths) * 1e3 / 2:6.1f} ms "
          f"of {SECONDS * 1e3:.0f}; longest {worst}")


if __name__ == "__main__":
    os.makedirs("target", exist_ok=True)
    run("two spinners", False)
    run("two spinners + a fdatasync loop", True)
