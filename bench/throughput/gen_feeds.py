#!/usr/bin/env python3
"""Writes N small RSS feeds (ITEMS items each) into DIR: the benchmark's own fallback when
../shared/corpus/gen_feeds.py (realistic RSS/Atom/RDF) is not beside the project."""
import os
import sys

count, items, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
for n in range(count):
    entries = "".join(
        f"<item><title>Item {i} of feed {n}</title><link>http://example.test/{n}/{i}</link>"
        f"<guid>feed-{n}-{i}</guid><pubDate>Mon, 0{1 + i % 9} Jan 2024 10:00:00 GMT</pubDate>"
        f"<description>Text of item {i} &amp; more.</description></item>"
        for i in range(items))
    with open(os.path.join(out, f"feed{n:05d}.xml"), "w") as f:
        f.write(f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed {n}</title>'
                f"<link>http://example.test/{n}/</link>{entries}</channel></rss>")
