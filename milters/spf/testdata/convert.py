#!/usr/bin/env python3
"""Convert the openspf YAML conformance suites into spf_suite_test fixtures.

Usage: convert.py [SRCDIR]   (default: ../../../../shared/testdata/spf,
                              i.e. the shared test data beside the tree)

Reads rfc7208-tests.yml, rfc4408-tests.yml and test.yml from SRCDIR and
writes rfc7208-tests.txt, rfc4408-tests.txt and test.txt beside this
script.  The output is committed, so the C test needs no YAML parser;
run this again only when the suites change.  Needs python3-yaml.

Fixture format, one "key value" per line (value = rest of the line, may
be empty; '#' lines are comments):

  scenario TEXT       starts a scenario: a fresh resolver
  zone LINE           one line of local data for tg_dns_load_line
  test NAME           starts a test of the current scenario
  spec, helo, host, mailfrom, explanation, receiver, strict   as in YAML
  result R [R...]     acceptable results (any of them)
  rfc7208 R           overrides result; see OVERRIDES below
  note TEXT           why
  end                 ends a test

How zonedata becomes local data (pyspf's test driver, testspf.py, is the
reference for the semantics):
  - TXT and SPF values are joined character-strings; each is written as
    quoted strings of at most 255 bytes, UTF-8, with \\DDD escapes.  An
    empty list of strings (no strings at all, which DNS cannot carry)
    becomes one empty string.  "TXT: NONE" is a marker, not a record.
  - SPF records are served as type SPF (99) and, when the name lists no
    TXT entry at all (not even NONE), also as TXT: "auto-magic
    duplication" per the suite's header, exactly as pyspf does it.
  - MX [pref, host] and CNAME: an empty host is the root, ".".
  - TIMEOUT: pyspf answers the types listed before it and times out the
    rest.  tollgate's "$TIMEOUT name." fails every type, so it is written
    only when no record of a type SPF queries (TXT, A, AAAA, MX, PTR,
    CNAME) comes first.  The one name where one does (spftimeout: TXT
    then TIMEOUT) is only ever queried for TXT, which it answers.
  - An empty record list: the name exists with no records; a HINFO
    record (a type SPF never asks for) makes it exist.
  - Unlisted names are NXDOMAIN: spf_suite_test adds a root SOA.
"""

import os
import sys

import yaml

SUITES = ("rfc7208-tests", "rfc4408-tests", "test")
QUERIED = ("TXT", "A", "AAAA", "MX", "PTR", "CNAME")
TTL = 300

# Tests whose expected result is not RFC 7208's.  Only pyspf's own
# test.yml has them: they run pyspf in a non-RFC mode ("strict" 0 or 2).
# RFC 7208 6 says unknown modifiers are ignored, and rfc7208-tests.yml
# checks exactly that (default-modifier-obsolete, "v=spf1 default=pass",
# and default-modifier-obsolete2, "v=spf1 default=+": both neutral).
# Where the suites disagree, rfc7208-tests.yml wins.
OVERRIDES = {
    ("test", "default-modifier"): (
        "neutral",
        "pyspf lax mode (strict=0) reads default=- as -all; RFC 7208 6 "
        "ignores unknown modifiers (rfc7208-tests: "
        "default-modifier-obsolete2)"),
    ("test", "default-modifier-harsh"): (
        "neutral",
        "pyspf harsh mode (strict=2) answers 'ambiguous', no RFC 7208 "
        "result; RFC 7208 6 ignores unknown modifiers (rfc7208-tests: "
        "default-modifier-obsolete2)"),
}


def fail(msg):
    sys.exit("convert.py: " + msg)


def owner(name):
    """A domain name in zone-file syntax, with a final dot."""
    out = []
    for b in name.encode("utf-8"):
        c = chr(b)
        if b <= 0x20 or b >= 0x7f or c in '"\\;()':
            out.append("\\%03d" % b)
        else:
            out.append(c)
    s = "".join(out)
    return s if s.endswith(".") else s + "."


def target(name):
    """An rdata domain name; "" is the root."""
    return "." if name in ("", None) else owner(str(name))


def quoted(value):
    """TXT rdata: one value (str) or a list of character-strings."""
    parts = value if isinstance(value, list) else [value]
    if not parts:
        parts = [""]
    out = []
    for part in parts:
        data = str(part).encode("utf-8")
        chunks = [data[i:i + 255] for i in range(0, len(data), 255)]
        for chunk in chunks or [b""]:
            s = []
            for b in chunk:
                if b < 0x20 or b >= 0x7f:
                    s.append("\\%03d" % b)
                elif chr(b) in '"\\':
                    s.append("\\" + chr(b))
                else:
                    s.append(chr(b))
            out.append('"' + "".join(s) + '"')
    return " ".join(out)


def rdata(rtype, value):
    if rtype in ("TXT", "SPF"):
        return quoted(value)
    if rtype == "MX":
        pref, host = value
        return "%d %s" % (int(pref), target(host))
    if rtype in ("PTR", "CNAME"):
        return target(value)
    if rtype in ("A", "AAAA"):
        return str(value)
    fail("unknown record type %s" % rtype)


def zone_lines(name, records):
    """Local-data lines for one zonedata entry."""
    records = records or []
    if not records:
        return ["%s %d IN HINFO \"spf-test\" \"no records\""
                % (owner(name), TTL)]
    has_txt = any(isinstance(r, dict) and "TXT" in r for r in records)
    lines, seen_queried = [], False
    for r in records:
        if r == "TIMEOUT":
            if seen_queried:
                lines.append("# TIMEOUT after answered types: not written")
            else:
                lines.append("$TIMEOUT %s" % owner(name))
            continue
        if not isinstance(r, dict) or len(r) != 1:
            fail("%s: odd record %r" % (name, r))
        (rtype, value), = r.items()
        if rtype == "TXT" and value == "NONE":
            continue
        types = [rtype] + (["TXT"] if rtype == "SPF" and not has_txt else [])
        for t in types:
            lines.append("%s %d IN %s %s" % (owner(name), TTL, t,
                                               rdata(t, value)))
            seen_queried = seen_queried or t in QUERIED
    return lines


def text_value(key, value):
    s = "" if value is None else str(value)
    s = " ".join(s.split("\n")).strip() if key in ("spec", "note") else s
    if any(ord(c) < 0x20 or ord(c) > 0x7e for c in s):
        fail("%s %r: not printable ASCII" % (key, s))
    return s


def convert(suite, src, dst):
    docs = [d for d in yaml.safe_load_all(open(src, "rb")) if d]
    out = ["# spf_suite_test fixture, generated by convert.py from",
           "# %s.yml; do not edit.  Source and licence: SOURCE.md." % suite,
           "suite %s" % suite.replace("-tests", "")]
    for doc in docs:
        title = doc.get("description") or doc.get("comment") or ""
        out.append("scenario %s" % text_value("note", title))
        for name, records in doc["zonedata"].items():
            for line in zone_lines(name, records):
                out.append(line if line.startswith("#") else "zone " + line)
        for tname, t in doc["tests"].items():
            out.append("test %s" % tname)
            for key in ("spec", "helo", "host", "mailfrom", "receiver",
                        "strict"):
                if key in t:
                    out.append("%s %s" % (key, text_value(key, t[key])))
            res = t["result"] if isinstance(t["result"], list) \
                else [t["result"]]
            out.append("result %s" % " ".join(str(r) for r in res))
            if "explanation" in t:
                out.append("explanation %s"
                           % text_value("explanation", t["explanation"]))
            if (suite, tname) in OVERRIDES:
                want, why = OVERRIDES[(suite, tname)]
                out.append("rfc7208 %s" % want)
                out.append("note %s" % why)
            out.append("end")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")
    return sum(len(d["tests"]) for d in docs)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    srcdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "..", "..", "..", "shared", "testdata", "spf")
    for suite in SUITES:
        n = convert(suite, os.path.join(srcdir, suite + ".yml"),
                    os.path.join(here, suite + ".txt"))
        print("%s: %d tests" % (suite, n))


if __name__ == "__main__":
    main()
