#!/usr/bin/env python3
"""Medians of alternating bench/sse runs, as a Markdown table.

usage: summary.py OUT_DIR ROUNDS STREAMS SPREAD_MS NAME [NAME…]
Reads OUT_DIR/NAME.R (the output of run.sh or nchan.sh) for R in 1..ROUNDS. With two names or
more, adds the ratio of each name's median p99 to the first name's.
"""
import re
import statistics
import sys

KEYS = ("conns_ok", "failed", "ended_by_server", "events", "min_events_per_conn", "missed", "repeated",
        "p50_ms", "p99_ms", "max_ms")


def figures(path):
    text = open(path).read()
    f = {}
    for key in KEYS:
        m = re.search(rf"\b{key}=([\d.]+)", text)
        f[key] = float(m.group(1)) if m else float("nan")
    m = re.search(r"kb_per_stream_total=([\d.]+)", text)
    f["kb"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"([\d.]+) us per delivered event", text)
    f["us"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"commit -> hub\): \d+, p50 <= ([\d.]+) s, p99 <= ([\d.]+) s", text)
    f["arrival_p99_ms"] = float(m.group(2)) * 1000 if m else float("nan")
    return f


def main():
    out, rounds, streams, spread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    names = sys.argv[5:]
    mode = "burst: every feed released at once" if spread == "0" else f"completions spread over {spread} ms"
    print(f"{streams} streams, {mode}, median of {rounds} alternating runs")
    print("| server | streams held / failed | events (min per stream) | missed / repeated | ended by server | "
          "latency p50 / p99 / max (ms) | commit → hub p99 (ms, bucket) | KB per stream | server CPU µs per event |")
    print("|---|---|---|---|---|---|---|---|---|")
    medians = {}
    for name in names:
        runs = [figures(f"{out}/{name}.{r}") for r in range(1, rounds + 1)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        medians[name] = med
        print(f"| {name} | {med['conns_ok']:.0f} / {med['failed']:.0f} | {med['events']:.0f} ({med['min_events_per_conn']:.0f}) | "
              f"{med['missed']:.0f} / {med['repeated']:.0f} | {med['ended_by_server']:.0f} | "
              f"{med['p50_ms']:.1f} / {med['p99_ms']:.1f} / {med['max_ms']:.1f} | ≤ {med['arrival_p99_ms']:g} | "
              f"{med['kb']:.1f} | {med['us']:.1f} |")
        for i, r in enumerate(runs, 1):
            print(f"|   run {i} | | {r['events']:.0f} | {r['missed']:.0f} / {r['repeated']:.0f} | | "
                  f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} / {r['max_ms']:.1f} | ≤ {r['arrival_p99_ms']:g} | {r['kb']:.1f} | {r['us']:.1f} |")
    first = names[0]
    for name in names[1:]:
        ratio = medians[name]["p99_ms"] / medians[first]["p99_ms"] if medians[first]["p99_ms"] else float("nan")
        print(f"p99 of {name} / {first}: {ratio:.2f}")


if __name__ == "__main__":
    main()
