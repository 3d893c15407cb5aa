#!/usr/bin/env python3
"""A test SMTP server (aiosmtpd) for the LetheNotify tests.

Listens on 127.0.0.1 and a free port, prints one JSON line {"port": P}, appends every message it
accepts to LOG as one JSON line {"mail_from", "rcpt_tos", "data"}, and exits when its standard input
closes. Recipients nobody@… are refused for good (550), busy@… for now (451).

  smtp_receiver.py LOG [--auth USER:PASS] [--starttls CERT KEY] [--smtps CERT KEY]
"""
import argparse
import json
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, log):
        self.log = log

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 <%s>: no such user here" % address
        if address.startswith("busy@"):
            return "451 4.3.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        with open(self.log, "a") as f:
            f.write(json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                                "data": data.decode("utf-8", "replace"),
                                "tls": session.ssl is not None
                                or server.transport.get_extra_info("ssl_object") is not None}) + "\n")
        return "250 2.0.0 accepted"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--auth")
    ap.add_argument("--starttls", nargs=2)
    ap.add_argument("--smtps", nargs=2)
    a = ap.parse_args()

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    kwargs = {}
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            return AuthResult(success=ok)

        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    if a.starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.starttls)
        kwargs.update(tls_context=ctx, require_starttls=True)
    if a.smtps:  # implicit TLS: the listening socket speaks TLS from the first byte
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.smtps)
        kwargs.update(ssl_context=ctx)
    controller = Controller(Handler(a.log), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print(json.dumps({"port": port}), flush=True)
    sys.stdin.read()  # until the test closes our standard input
    controller.stop()


if __name__ == "__main__":
    main()
