#!/usr/bin/python3
"""sink.py - a tiny SMTP server that accepts everything and keeps it.

Used by the integration harness as Postfix's relayhost.  It listens on
127.0.0.1:PORT and stores each message it is given:

  DIR/NNNN.eml   the message exactly as received, after dot-unstuffing,
                 with its CRLF line ends KEPT (what Postfix put on the wire)
  DIR/NNNN.env   the envelope as JSON: {"mail_from", "rcpt_to", "helo",
                 "peer", "received_at"}

Both files appear atomically (written to a temporary name, then renamed),
the .env before the .eml, so a reader that sees NNNN.eml also sees its
envelope.  Numbering starts at 0001 and follows acceptance order.

It never hangs the test suite: every client socket has a read timeout,
the process exits on SIGTERM or SIGINT, when its parent process (or the
--watch-pid process) disappears, and after --max-seconds in any case.
"""

import argparse
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time

MAX_LINE = 1000 * 1000          # generous; Postfix never sends lines this long
MAX_MESSAGE = 64 * 1024 * 1024


class State:
    def __init__(self, outdir):
        self.outdir = outdir
        self.lock = threading.Lock()
        self.count = 0

    def store(self, data, envelope):
        with self.lock:
            self.count += 1
            base = os.path.join(self.outdir, "%04d" % self.count)
        tmp = base + ".env.tmp"
        with open(tmp, "w") as f:
            json.dump(envelope, f)
            f.write("\n")
        os.rename(tmp, base + ".env")
        tmp = base + ".eml.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, base + ".eml")
        return base


class Handler(socketserver.StreamRequestHandler):
    timeout = 60                  # per read: a stuck client is dropped

    def reply(self, text):
        self.wfile.write(text.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(MAX_LINE)
        if not line:
            raise EOFError
        return line

    def read_data(self):
        chunks = []
        size = 0
        while True:
            line = self.readline()
            if line in (b".\r\n", b".\n"):
                return b"".join(chunks)
            if line.startswith(b"."):
                line = line[1:]   # RFC 5321 4.5.2 dot-unstuffing
            size += len(line)
            if size > MAX_MESSAGE:
                raise EOFError
            chunks.append(line)

    def handle(self):
        state = self.server.state
        mail_from, rcpts, helo = None, [], None
        peer = "%s:%d" % self.client_address[:2]
        try:
            self.reply("220 sink.test ESMTP tollgate test sink")
            while True:
                line = self.readline().rstrip(b"\r\n")
                cmd = line[:4].upper()
                arg = line[5:].decode("utf-8", "replace") if len(line) > 5 else ""
                if cmd == b"EHLO":
                    helo = arg
                    self.reply("250-sink.test")
                    self.reply("250-PIPELINING")
                    self.reply("250-8BITMIME")
                    self.reply("250-SMTPUTF8")
                    self.reply("250 SIZE %d" % MAX_MESSAGE)
                elif cmd == b"HELO":
                    helo = arg
                    self.reply("250 sink.test")
                elif cmd == b"MAIL":
                    mail_from, rcpts = arg, []
                    self.reply("250 2.1.0 ok")
                elif cmd == b"RCPT":
                    rcpts.append(arg)
                    self.reply("250 2.1.5 ok")
                elif cmd == b"DATA":
                    if mail_from is None or not rcpts:
                        self.reply("503 5.5.1 need MAIL and RCPT first")
                        continue
                    self.reply("354 go ahead")
                    data = self.read_data()
                    env = {"mail_from": mail_from, "rcpt_to": rcpts,
                           "helo": helo, "peer": peer,
                           "received_at": time.time()}
                    base = state.store(data, env)
                    self.reply("250 2.0.0 ok %s" % os.path.basename(base))
                    mail_from, rcpts = None, []
                elif cmd == b"RSET":
                    mail_from, rcpts = None, []
                    self.reply("250 2.0.0 ok")
                elif cmd == b"NOOP":
                    self.reply("250 2.0.0 ok")
                elif cmd == b"QUIT":
                    self.reply("221 2.0.0 bye")
                    return
                else:
                    self.reply("502 5.5.2 command not implemented")
        except (EOFError, OSError, socket.timeout):
            return


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--dir", required=True, help="where messages are stored")
    ap.add_argument("--max-seconds", type=float, default=3600)
    ap.add_argument("--watch-pid", type=int, default=os.getppid(),
                    help="exit when this process is gone (default: parent)")
    args = ap.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    srv = Server((args.addr, args.port), Handler)
    srv.state = State(args.dir)

    def stop(signum, frame):
        # shutdown() must not run on the serving thread's own stack
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watchdog():
        deadline = time.monotonic() + args.max_seconds
        while time.monotonic() < deadline:
            if args.watch_pid > 1 and not pid_alive(args.watch_pid):
                break
            time.sleep(0.5)
        srv.shutdown()
    threading.Thread(target=watchdog, daemon=True).start()

    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
