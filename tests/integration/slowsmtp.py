#!/usr/bin/env python3
"""slowsmtp.py - an SMTP client that holds its message in flight.

Sends EHLO, MAIL, RCPT, DATA and the headers plus the first body line,
touches READY, waits (bounded) until RELEASE exists, then sends the rest
and the final dot.  Prints the final reply; exits 0 when it starts with
--expect, 1 otherwise (2 on a protocol or timeout error).  Used by
reload.test to keep a message in flight across a SIGHUP or a SIGTERM.
"""
import argparse
import os
import smtplib
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True, help="HOST:PORT")
    p.add_argument("--from", dest="mail_from", required=True)
    p.add_argument("--to", dest="rcpt_to", required=True)
    p.add_argument("--ready", required=True, help="file to create once held")
    p.add_argument("--release", required=True, help="file to wait for")
    p.add_argument("--expect", default="2")
    p.add_argument("--max-wait", type=float, default=60)
    p.add_argument("file")
    a = p.parse_args()
    host, port = a.server.rsplit(":", 1)
    with open(a.file, "rb") as f:
        data = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    try:
        s = smtplib.SMTP(host, int(port), timeout=a.max_wait + 30)
        s.ehlo("slow.test.example")
        code, msg = s.mail(a.mail_from)
        if code != 250:
            print(f"{code} {msg.decode()}")
            return 1
        code, msg = s.rcpt(a.rcpt_to)
        if code not in (250, 251):
            print(f"{code} {msg.decode()}")
            return 1
        code, msg = s.docmd("DATA")
        if code != 354:
            print(f"{code} {msg.decode()}")
            return 1
        first, _, rest = body.partition(b"\r\n")
        s.send(head + sep + first + b"\r\n")
        with open(a.ready, "w"):
            pass
        end = time.monotonic() + a.max_wait
        while not os.path.exists(a.release):
            if time.monotonic() > end:
                print("timeout waiting for", a.release)
                return 2
            time.sleep(0.05)
        if rest and not rest.endswith(b"\r\n"):
            rest += b"\r\n"
        s.send(rest + b".\r\n")
        code, msg = s.getreply()
        print(f"{code} {msg.decode()}")
        s.quit()
    except (OSError, smtplib.SMTPException) as e:
        print("error:", e)
        return 2
    return 0 if str(code).startswith(a.expect) else 1


if __name__ == "__main__":
    sys.exit(main())
