#!/usr/bin/python3
"""Translates the `Expect:` lines of Python feedparser's test suite into checks on feedpipe's
normalized feed, written to feedparser_checks.json (a fixture read by
tests/unit/parser_conformance_test.cpp).

    python3 tests/conformance/translate_expectations.py [FEEDPARSER_CORPUS_DIR] [OUT.json]

An expectation is a Python expression over feedparser's result. It is split at its top-level
`and`s; each part becomes a check when it is about a field feedpipe keeps, and is otherwise
listed as untranslated (never counted as passed):

  feed['title'] / feed['title_detail']['value']      -> title      (compared as plain text)
  feed['link']                                        -> link
  entries[i]['title'] / ['title_detail']['value']     -> items[i].title (plain text)
  entries[i]['link']                                  -> items[i].link
  entries[i]['id'] / ['guid']                         -> items[i].guid
  entries[i]['author']                                -> items[i].author ("name (email)" style)
  entries[i]['published_parsed'] / issued_parsed      -> items[i].published (RFC 3339 UTC)
  entries[i]['updated_parsed'] / modified/date_parsed -> items[i].updated   (RFC 3339 UTC)
  entries[i]['summary'] / ['description'] / ['summary_detail']['value'] -> items[i].summary
  entries[i]['content'][0]['value']                   -> items[i].content
  len(entries) == n                                   -> item count
  'field' not in entries[i]  (for those fields)       -> the field is absent
  not bozo                                            -> the document parses

Titles are plain text in feedpipe (DESIGN.md), so a title check compares text: on both sides
tags are stripped and entities decoded before comparing.

feedparser's suite is served over HTTP by its harness, from http://127.0.0.1:8097/tests/<path>;
a file's `Header:` lines are the HTTP headers it is served with. So every file is parsed with
that document URL as base URL (resolved against a Content-Location header when there is one)
and with the charset of a Content-Type header, as feedpipe's fetcher would pass them. `bozo` (the XML was not well formed) has
no counterpart: feedpipe recovers what it can and does not report well-formedness, so a bare
`bozo` is untranslated. A file whose expectation has no check on a kept field is skipped.
"""
import ast
import calendar
import json
import os
import re
import sys
import time
from urllib.parse import urljoin

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EXPECT = re.compile(r"^\s*Expect:\s*(.*?)\s*$", re.M)
HEADER = re.compile(r"^\s*Header:\s*([A-Za-z-]+):\s*(.*?)\s*$", re.M)
DOCUMENT_ROOT = "http://127.0.0.1:8097/tests/"
class Untranslatable(Exception):
    pass


def accessor(node):
    """feed['a']['b'], entries[0].title, feed.get('x') -> ['feed', 'a', 'b'] (ints for indexes)."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Subscript):
        key = node.slice
        if not isinstance(key, ast.Constant):
            raise Untranslatable("computed subscript")
        return accessor(node.value) + [key.value]
    if isinstance(node, ast.Attribute):
        return accessor(node.value) + [node.attr]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)):
        return accessor(node.func.value) + [node.args[0].value]
    raise Untranslatable("not a field access")


TEXT_FIELDS = {  # feedparser path (after feed / entries[i]) -> (feedpipe field, comparison)
    ("feed", "title"): ("title", "text"),
    ("feed", "title_detail", "value"): ("title", "text"),
    ("feed", "link"): ("link", "exact"),
    ("entry", "title"): ("title", "text"),
    ("entry", "title_detail", "value"): ("title", "text"),
    ("entry", "link"): ("link", "exact"),
    ("entry", "id"): ("guid", "exact"),
    ("entry", "guid"): ("guid", "exact"),
    ("entry", "author"): ("author", "exact"),
    ("entry", "summary"): ("summary", "exact"),
    ("entry", "description"): ("summary", "exact"),
    ("entry", "summary_detail", "value"): ("summary", "exact"),
    ("entry", "content", 0, "value"): ("content", "exact"),
}
DATE_FIELDS = {
    ("entry", "published_parsed"): "published",
    ("entry", "issued_parsed"): "published",
    ("entry", "updated_parsed"): "updated",
    ("entry", "modified_parsed"): "updated",
    ("entry", "date_parsed"): "updated",
}
ABSENT_KEYS = {"title": "title", "link": "link", "id": "guid", "guid": "guid", "author": "author",
               "summary": "summary", "description": "summary", "content": "content",
               "published": "published", "updated": "updated"}


def target(path):
    """['entries', 0, 'title'] -> ('entry', 0, ('title',)); ['feed', 'link'] -> ('feed', None, ('link',))."""
    if path[0] == "feed":
        return "feed", None, tuple(path[1:])
    if path[0] == "entries" and len(path) >= 2 and isinstance(path[1], int):
        return "entry", path[1], tuple(path[2:])
    raise Untranslatable("not feed or entries")


def check_for(scope, index, field, compare, value):
    c = {"scope": scope, "field": field, "compare": compare, "value": value}
    if index is not None:
        c["index"] = index
    return c


def translate_conjunct(node):
    if isinstance(node, ast.Name) and node.id == "bozo":
        raise Untranslatable("bozo (well-formedness is not reported)")
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and isinstance(node.operand, ast.Name)
            and node.operand.id == "bozo"):
        return {"scope": "document", "compare": "parses"}
    if not isinstance(node, ast.Compare) or len(node.ops) != 1:
        raise Untranslatable("not a single comparison")
    op, left, right = node.ops[0], node.left, node.comparators[0]
    if isinstance(op, ast.NotIn) and isinstance(left, ast.Constant):
        scope, index, rest = target(accessor(right))
        if scope == "entry" and rest == () and left.value in ABSENT_KEYS:
            return check_for("entry", index, ABSENT_KEYS[left.value], "absent", "")
        raise Untranslatable("membership of an unkept field")
    if not isinstance(op, ast.Eq):
        raise Untranslatable("not ==")
    if (isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "len"
            and isinstance(left.args[0], ast.Name) and left.args[0].id == "entries"):
        return {"scope": "feed", "field": "count", "compare": "count", "value": ast.literal_eval(right)}
    scope, index, rest = target(accessor(left))
    try:
        value = ast.literal_eval(right)
    except ValueError:
        raise Untranslatable("expected value is not a literal")
    key = (scope,) + rest
    if key in TEXT_FIELDS and isinstance(value, str):
        field, compare = TEXT_FIELDS[key]
        return check_for(scope, index, field, compare, value)
    if key in DATE_FIELDS and isinstance(value, tuple) and len(value) == 9:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(calendar.timegm(value)))
        return check_for(scope, index, DATE_FIELDS[key], "exact", stamp)
    raise Untranslatable("field feedpipe does not keep: " + "/".join(map(str, key)))


def conjuncts(node):
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        for v in node.values:
            yield from conjuncts(v)
    else:
        yield node


def translate(expression):
    checks, untranslated = [], []
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return [], [expression]
    for part in conjuncts(tree):
        try:
            checks.append(translate_conjunct(part))
        except (Untranslatable, ValueError, IndexError) as e:
            untranslated.append("%s  [%s]" % (ast.unparse(part), e))
    return checks, untranslated


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "..", "shared", "corpus", "feedparser")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "feedparser_checks.json")
    files = []
    for root, dirs, names in os.walk(corpus):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                head = f.read(4096).decode("latin-1")
            m = EXPECT.search(head)
            if not m:
                continue
            expression = m.group(1)
            checks, untranslated = translate(expression)
            # A file is applicable when at least one check concerns a kept field
            # ("the document parses" alone is not an expectation about feedpipe's fields).
            base = DOCUMENT_ROOT + os.path.relpath(path, corpus)
            charset = ""
            for name, value in HEADER.findall(head):
                if name.lower() == "content-location":
                    base = urljoin(base, value)
                elif name.lower() == "content-type":
                    m2 = re.search(r"charset\s*=\s*[\"']?([^\"';\s]+)", value)
                    if m2:
                        charset = m2.group(1)
            applicable = any(c["compare"] != "parses" for c in checks)
            files.append({
                "file": os.path.relpath(path, corpus),
                "expect": expression,
                "base": base,
                "charset": charset,
                "checks": checks if applicable else [],
                "untranslated": untranslated,
            })
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"files": files}, f, ensure_ascii=False, indent=0)
        f.write("\n")
    n_app = sum(1 for f in files if f["checks"])
    print("%d files with Expect, %d applicable -> %s" % (len(files), n_app, out))


if __name__ == "__main__":
    main()
