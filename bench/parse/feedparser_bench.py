#!/usr/bin/python3
"""Times Python feedparser (Debian python3-feedparser) over every file of the directories given,
read into memory first; median of --runs runs, in CPU seconds (time.process_time(), as
parse_bench measures), which a machine shared with other work disturbs far less than wall time. Prints lines in parse_bench's format:

    median LABEL feedparser files bytes seconds MB/s files/s
"""
import argparse
import os
import statistics
import time

import feedparser


def load(directory):
    files = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            if name.startswith(("LICENSE", "README")):
                continue
            with open(os.path.join(root, name), "rb") as f:
                files.append(f.read())
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("sets", nargs="+", help="LABEL=DIR")
    args = ap.parse_args()
    for spec in args.sets:
        label, directory = spec.split("=", 1)
        if not os.path.isdir(directory):
            print("skip %s: %s is missing" % (label, directory))
            continue
        files = load(directory)
        size = sum(len(f) for f in files)
        times = []
        for _ in range(args.runs):
            start = time.process_time()
            for data in files:
                feedparser.parse(data)
            times.append(time.process_time() - start)
        t = statistics.median(times)
        print("median %s feedparser %d %d %.6f %.2f %.1f" % (label, len(files), size, t, size / t / 1e6,
                                                             len(files) / t), flush=True)


if __name__ == "__main__":
    main()
