#!/usr/bin/python3
"""Writes what Python's feedparser extracts from the wild corpus to wild_expected.json.

    /usr/bin/python3 tests/conformance/feedparser_expectations.py [CORPUS_WILD_DIR] [OUT.json]

Defaults: ../shared/corpus/wild (relative to the repository) and tests/conformance/wild_expected.json.
Needs Debian's python3-feedparser. Per file: the feed title, the item count, and per item the
title, link and published-or-updated time (to the second, RFC 3339 UTC), with tags stripped,
entities decoded and white space collapsed -- the same normalization that
tests/unit/parser_wild_agreement_test.cpp applies to feedpipe's output.
"""
import calendar
import html
import json
import os
import re
import sys
import time

import feedparser

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

TAG = re.compile(r"<[^>]*>")
SPACE = re.compile(r"[ \t\n\r\f\v\u00a0]+")


def norm(text):
    """Tags stripped, then entities decoded, then white space collapsed and trimmed."""
    if not text:
        return ""
    text = TAG.sub("", text)
    text = html.unescape(text)
    return SPACE.sub(" ", text).strip()


def rfc3339(struct):
    if not struct:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(calendar.timegm(struct)))


def extract(path):
    with open(path, "rb") as f:
        data = f.read()
    d = feedparser.parse(data)
    items = []
    for e in d.entries:
        when = e.get("published_parsed") or e.get("updated_parsed")
        items.append({
            "title": norm(e.get("title", "")),
            "link": e.get("link", "").strip(),
            "time": rfc3339(when),
        })
    return {
        "bozo": bool(d.bozo),
        "title": norm(d.feed.get("title", "")),
        "count": len(d.entries),
        "items": items,
    }


def main():
    wild = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "..", "shared", "corpus", "wild")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "wild_expected.json")
    files = {}
    for root, _, names in os.walk(wild):
        for name in sorted(names):
            if name.startswith(("LICENSE", "README")):
                continue
            path = os.path.join(root, name)
            files[os.path.relpath(path, wild)] = extract(path)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"generator": "feedparser " + feedparser.__version__, "files": files},
                  f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    print("%d files -> %s" % (len(files), out))


if __name__ == "__main__":
    main()
