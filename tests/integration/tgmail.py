#!/usr/bin/python3
"""tgmail.py - mail helpers for the tollgate integration tests.

Subcommands (run with /usr/bin/python3: Debian's python3-dkim lives there):

  send        send message files over one SMTP session, from a chosen
              source address, optionally after AUTH; checks reply codes
  dkim-sign   add a DKIM-Signature made with dkimpy
  dkim-verify verify every DKIM-Signature with dkimpy, keys from a zone file
  header      print the unfolded value of every header field with a name
  keep-sig    copy a message keeping only its N-th DKIM-Signature
  dns-serve   answer DNS queries (UDP and TCP) from a zone file
  zone-get    print the TXT data of one name from a zone file
  policy      ask a policy server (Postfix SMTPD_POLICY_README protocol):
              one request, or --edge: concurrent clients and edge cases

Zone files hold one record per line in zone-file syntax, with absolute
names: "NAME TTL IN TYPE RDATA"; ';' starts a comment.  That is also the
form libunbound's ub_ctx_data_add() takes, so the milter can load the same
file.
"""

import argparse
import os
import re
import signal
import smtplib
import socket
import socketserver
import sys
import threading
import time


# ---------------------------------------------------------------- messages

def read_crlf(path):
    """Read a message file and return it with CRLF line ends."""
    with open(path, "rb") as f:
        data = f.read()
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data


def split_message(data):
    """Return (list of raw header fields incl. folding and CRLF, body)."""
    sep = data.find(b"\r\n\r\n")
    if sep < 0:
        head, body = data, b""
    else:
        head, body = data[:sep + 2], data[sep + 4:]
    fields = []
    for line in head.split(b"\r\n")[:-1] if head.endswith(b"\r\n") \
            else head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields, body


def header_values(data, name):
    fields, _ = split_message(data)
    out = []
    lname = name.lower().encode()
    for f in fields:
        k, _, v = f.partition(b":")
        if k.strip().lower() == lname:
            v = re.sub(rb"\r\n[ \t]+", b" ", v).rstrip(b"\r\n").strip()
            out.append(v.decode("utf-8", "replace"))
    return out


# ------------------------------------------------------------------- zones

def parse_zone(path):
    """Return {(name, type): [rdata text, ...]} from a one-line-per-RR file."""
    recs = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = strip_comment(line).strip()
            if not line:
                continue
            m = re.match(r"(\S+)\s+(\d+)\s+IN\s+([A-Za-z0-9]+)\s+(.*)$", line)
            if not m:
                raise SystemExit("%s:%d: cannot parse: %s" % (path, lineno, line))
            name = m.group(1).lower()
            if not name.endswith("."):
                raise SystemExit("%s:%d: name must be absolute" % (path, lineno))
            recs.setdefault((name, m.group(3).upper()), []).append(m.group(4))
    return recs


def strip_comment(line):
    out, quoted = [], False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            break
        out.append(ch)
    return "".join(out)


def txt_strings(rdata):
    """'"a" "b"' -> b"ab" (RFC 6376 3.6.2.2: the strings are concatenated)."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', rdata)
    return "".join(parts).encode()


def zone_dnsfunc(path):
    recs = parse_zone(path)

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        name = name.lower()
        if not name.endswith("."):
            name += "."
        txt = recs.get((name, "TXT"))
        return txt_strings(txt[0]) if txt else None
    return dnsfunc


# -------------------------------------------------------------------- send

def cmd_send(a):
    files = a.files * a.repeat
    host, port = a.server.rsplit(":", 1)
    timings = []
    t_conn = time.monotonic()
    s = smtplib.SMTP(timeout=a.timeout, source_address=(a.source, 0))
    s.connect(host, int(port))
    s.ehlo(a.helo)
    if a.auth:
        user, _, pw = a.auth.partition(":")
        s.login(user, pw)
    failures = 0
    t0 = time.monotonic()
    for path in files:
        data = read_crlf(path)
        t1 = time.monotonic()
        code, resp = s.mail(a.mail_from)
        if code == 250:
            for rcpt in a.rcpt_to:
                rc, rresp = s.rcpt(rcpt)
                if rc not in (250, 251):
                    code, resp = rc, rresp
                    break
        if code == 250:
            code, resp = s.data(data)
        else:
            s.rset()
        timings.append(time.monotonic() - t1)
        line = "%s %d %s" % (os.path.basename(path), code,
                             resp.decode("utf-8", "replace"))
        print(line, flush=True)
        if not str(code).startswith(a.expect):
            print("send: %s: expected %sxx" % (path, a.expect), file=sys.stderr)
            failures += 1
    total = time.monotonic() - t0
    try:
        s.quit()
    except smtplib.SMTPException:
        pass
    if a.timing:
        print("timing: messages=%d total=%.4f max=%.4f connect+ehlo=%.4f"
              % (len(timings), total, max(timings), t0 - t_conn), flush=True)
    return 1 if failures else 0


# ------------------------------------------------------------------ policy

def policy_request(attrs):
    return "".join("%s=%s\n" % kv for kv in attrs).encode() + b"\n"


def policy_read(f):
    """One reply as a dict; None when the server closed the connection."""
    reply = {}
    while True:
        line = f.readline()
        if not line:
            return None
        line = line.rstrip(b"\r\n").decode("utf-8", "replace")
        if line == "":
            return reply
        k, _, v = line.partition("=")
        reply[k] = v


def policy_connect(port, timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s, s.makefile("rb")


def policy_attrs(client, sender, rcpt, extra=()):
    return [("request", "smtpd_access_policy"), ("protocol_state", "RCPT"),
            ("client_address", client), ("sender", sender),
            ("recipient", rcpt)] + list(extra)


def policy_closed(s, f):
    """True when the server has closed the connection (EOF or reset)."""
    try:
        return f.read(1) == b""
    except ConnectionResetError:
        return True     # closed with our unread bytes in its buffer
    except socket.timeout:
        return False


def policy_edge(a):
    """Edge cases, then 64 concurrent clients; exit 1 on any surprise."""
    fails = []

    def check(what, ok):
        print("%s: %s" % ("ok" if ok else "FAIL", what), flush=True)
        if not ok:
            fails.append(what)

    # Missing attributes: an answer, the default action.
    s, f = policy_connect(a.port)
    s.sendall(b"request=smtpd_access_policy\n\n")
    r = policy_read(f)
    check("missing attributes answered DUNNO", r == {"action": "DUNNO"})
    # Unknown attributes are ignored; the connection stays usable.
    s.sendall(policy_request([("x_unknown", "1"), ("protocol_state", "DATA")]))
    r = policy_read(f)
    check("unknown attribute ignored", r == {"action": "DUNNO"})
    s.close()
    # A client that leaves mid-request hurts nobody.
    for _ in range(8):
        s, f = policy_connect(a.port)
        s.sendall(b"request=smtpd_access_policy\nclient_addr")
        s.close()
    # A 100 KB line: disconnected without an answer.
    s, f = policy_connect(a.port)
    try:
        s.sendall(b"sender=" + b"x" * (100 * 1024) + b"\n\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    check("100 KB line disconnected", policy_closed(s, f))
    s.close()
    # Garbage: the default action, then the connection is closed.
    s, f = policy_connect(a.port)
    s.sendall(b"\xff\xfe garbage\x00\n\n")
    r = policy_read(f)
    check("garbage answered with the default action",
          r == {"action": "DUNNO"})
    check("garbage then disconnected", policy_closed(s, f))
    s.close()

    # 64 clients at once, each with pipelined requests written in pieces.
    results = [None] * 64

    def client(i):
        try:
            s, f = policy_connect(a.port)
            data = b"".join(policy_request(policy_attrs(
                "192.0.%d.%d" % (100 + i % 50, i), "c%d@edge.example" % i,
                "r%d@example.org" % j)) for j in range(3))
            for k in range(0, len(data), 37):
                s.sendall(data[k:k + 37])
                time.sleep(0.001)
            got = [policy_read(f) for _ in range(3)]
            s.close()
            results[i] = got
        except OSError as e:
            results[i] = e

    threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [r for r in results if not isinstance(r, list) or
           any(x is None or not x.get("action", "").startswith(
               "DEFER_IF_PERMIT 4.7.1 ") for x in r)]
    check("64 concurrent clients, 3 pipelined requests each, all deferred",
          not bad)
    if bad:
        print("first bad result: %r" % (bad[0],), file=sys.stderr)
    # The server still answers.
    s, f = policy_connect(a.port)
    s.sendall(b"request=smtpd_access_policy\n\n")
    check("still serving afterwards", policy_read(f) == {"action": "DUNNO"})
    s.close()
    return 1 if fails else 0


def cmd_policy(a):
    if a.edge:
        return policy_edge(a)
    attrs = policy_attrs(a.client, a.sender, a.rcpt,
                         [tuple(x.split("=", 1)) for x in a.attr])
    s, f = policy_connect(a.port)
    s.sendall(policy_request(attrs))
    r = policy_read(f)
    s.close()
    if r is None:
        print("policy: connection closed", file=sys.stderr)
        return 1
    print(r.get("action", ""))
    return 0


# -------------------------------------------------------------------- dkim

def cmd_dkim_sign(a):
    import dkim
    data = read_crlf(a.infile)
    with open(a.key, "rb") as f:
        key = f.read()
    if a.algorithm.startswith("ed25519") and b"BEGIN PRIVATE KEY" in key:
        # dkimpy wants the bare base64 32-byte seed, not PKCS#8 PEM; the
        # seed is the last 32 bytes of the DER (RFC 8410 7)
        import base64
        der = base64.b64decode(b"".join(
            l for l in key.splitlines() if not l.startswith(b"-----")))
        key = base64.b64encode(der[-32:])
    kw = {}
    if a.headers:
        kw["include_headers"] = [h.encode() for h in a.headers.split(":")]
    sig = dkim.sign(data, a.selector.encode(), a.domain.encode(), key,
                    signature_algorithm=a.algorithm.encode(),
                    canonicalize=(b"relaxed", b"relaxed"),
                    linesep=b"\r\n", **kw)
    with open(a.outfile, "wb") as f:
        f.write(sig + data)
    return 0


def cmd_dkim_verify(a):
    import dkim
    data = open(a.file, "rb").read()
    dnsfunc = zone_dnsfunc(a.zone)
    fields, _ = split_message(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    nsig = sum(1 for f in fields
               if f.split(b":", 1)[0].strip().lower() == b"dkim-signature")
    if nsig < a.min_sigs:
        print("dkimpy: %d signatures, want at least %d" % (nsig, a.min_sigs))
        return 1
    bad = 0
    for i in range(nsig):
        d = dkim.DKIM(data, minkey=1024)
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
        tags = dict(d.signature_fields) if d.signature_fields else {}
        print("dkimpy: sig %d a=%s d=%s s=%s: %s" % (
            i, tags.get(b"a", b"?").decode(), tags.get(b"d", b"?").decode(),
            tags.get(b"s", b"?").decode(), "pass" if ok else "FAIL"))
        if not ok:
            bad += 1
    return 1 if bad else 0


def cmd_header(a):
    data = read_crlf(a.file)
    vals = header_values(data, a.name)
    for v in vals:
        print(v)
    return 0 if vals else 1


def cmd_keep_sig(a):
    data = read_crlf(a.infile)
    fields, body = split_message(data)
    out, n = [], 0
    for f in fields:
        if f.split(b":", 1)[0].strip().lower() == b"dkim-signature":
            n += 1
            if n - 1 != a.index:
                continue
        out.append(f)
    if a.index >= n:
        print("keep-sig: %s has %d signatures" % (a.infile, n), file=sys.stderr)
        return 1
    with open(a.outfile, "wb") as f:
        f.write(b"".join(out) + b"\r\n" + body)
    return 0


def cmd_zone_get(a):
    txt = zone_dnsfunc(a.zone)(a.name)
    if txt is None:
        return 1
    print(txt.decode())
    return 0


# ------------------------------------------------------------- dns-serve

def cmd_dns_serve(a):
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset
    import dns.flags

    recs = parse_zone(a.zone)
    names = {n for (n, _) in recs}
    soas = {n: v for (n, t), v in recs.items() if t == "SOA"}

    def answer(wire):
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        r.flags &= ~dns.flags.RA
        if not q.question:
            r.set_rcode(dns.rcode.FORMERR)
            return r
        qn = q.question[0].name.to_text().lower()
        qt = dns.rdatatype.to_text(q.question[0].rdtype)
        if (qn, qt) in recs:
            r.answer.append(dns.rrset.from_text_list(
                qn, 300, "IN", qt, recs[(qn, qt)]))
            return r
        apex = next((z for z in sorted(soas, key=len, reverse=True)
                     if qn == z or qn.endswith("." + z)), None)
        if apex is None:
            r.set_rcode(dns.rcode.REFUSED)
            return r
        if qn not in names and not any(n.endswith("." + qn) for n in names):
            r.set_rcode(dns.rcode.NXDOMAIN)
        r.authority.append(dns.rrset.from_text_list(
            apex, 300, "IN", "SOA", soas[apex]))
        return r

    class UDP(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            try:
                sock.sendto(answer(data).to_wire(), self.client_address)
            except Exception as e:           # a bad query must not kill us
                print("dns-serve: %s" % e, file=sys.stderr)

    class TCP(socketserver.StreamRequestHandler):
        timeout = 10

        def handle(self):
            try:
                n = int.from_bytes(self.rfile.read(2), "big")
                out = answer(self.rfile.read(n)).to_wire()
                self.wfile.write(len(out).to_bytes(2, "big") + out)
            except Exception as e:
                print("dns-serve: %s" % e, file=sys.stderr)

    class US(socketserver.ThreadingMixIn, socketserver.UDPServer):
        allow_reuse_address = True
        daemon_threads = True

    class TS(socketserver.ThreadingMixIn, socketserver.TCPServer):
        allow_reuse_address = True
        daemon_threads = True

    us = US((a.addr, a.port), UDP)
    ts = TS((a.addr, a.port), TCP)
    servers = [us, ts]
    done = threading.Event()

    def stop(*_):
        done.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for srv in servers:
        threading.Thread(target=srv.serve_forever, args=(0.2,),
                         daemon=True).start()
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("ready\n")
    deadline = time.monotonic() + a.max_seconds
    ppid = a.watch_pid
    while not done.is_set() and time.monotonic() < deadline:
        if ppid > 1:
            try:
                os.kill(ppid, 0)
            except ProcessLookupError:
                break
        done.wait(0.5)
    for srv in servers:
        srv.shutdown()
    return 0


# -------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("send")
    p.add_argument("--server", required=True, help="HOST:PORT")
    p.add_argument("--source", default="127.0.0.1", help="bind address")
    p.add_argument("--helo", default="client.test.example")
    p.add_argument("--from", dest="mail_from", required=True)
    p.add_argument("--to", dest="rcpt_to", action="append", required=True)
    p.add_argument("--auth", help="USER:PASSWORD (AUTH PLAIN/LOGIN)")
    p.add_argument("--expect", default="2", help="reply class or code prefix")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--timing", action="store_true")
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("dkim-sign")
    p.add_argument("--domain", required=True)
    p.add_argument("--selector", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--algorithm", default="rsa-sha256")
    p.add_argument("--headers", help="colon-separated list to sign")
    p.add_argument("infile")
    p.add_argument("outfile")
    p.set_defaults(func=cmd_dkim_sign)

    p = sub.add_parser("dkim-verify")
    p.add_argument("--zone", required=True)
    p.add_argument("--min-sigs", type=int, default=1)
    p.add_argument("file")
    p.set_defaults(func=cmd_dkim_verify)

    p = sub.add_parser("header")
    p.add_argument("file")
    p.add_argument("name")
    p.set_defaults(func=cmd_header)

    p = sub.add_parser("keep-sig")
    p.add_argument("infile")
    p.add_argument("index", type=int, help="0-based, in header order")
    p.add_argument("outfile")
    p.set_defaults(func=cmd_keep_sig)

    p = sub.add_parser("zone-get")
    p.add_argument("--zone", required=True)
    p.add_argument("name")
    p.set_defaults(func=cmd_zone_get)

    p = sub.add_parser("dns-serve")
    p.add_argument("--zone", required=True)
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--ready-file")
    p.add_argument("--max-seconds", type=float, default=3600)
    p.add_argument("--watch-pid", type=int, default=os.getppid())
    p.set_defaults(func=cmd_dns_serve)

    p = sub.add_parser("policy")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client", default="192.0.2.1")
    p.add_argument("--sender", default="a@example.net")
    p.add_argument("--rcpt", default="b@example.org")
    p.add_argument("--attr", action="append", default=[],
                   help="NAME=VALUE, more attributes")
    p.add_argument("--edge", action="store_true",
                   help="edge cases and 64 concurrent clients")
    p.set_defaults(func=cmd_policy)

    a = ap.parse_args()
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
