"""A deliberately broken seller for the tests: it signs its answers but checks nothing.

It never verifies the signature, the timestamp or the nonce, creates a new instance for
every newInstance, knows every instanceId, and accepts any activity and any fields.
Other ``--mode`` values break the transport instead:

    not-json        signed answer whose body is not JSON
    no-result-code  signed JSON answer without resultCode
    http-500        HTTP 500
    unsigned        a correct answer without Body-Sign
    trickle         a correct answer sent one byte every 0.2 s
    repeat-error    lax, but an activity after the purchase asked again with the same
                    body answers 000005 (a seller that is not idempotent)

    python tests/seller_interface/lax_seller.py --port 0 --access-key AK --secret S [--mode …]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from seller_interface import body_sign_header, encode_body

MODES = ("lax", "not-json", "no-result-code", "http-500", "unsigned", "trickle", "repeat-error")
AFTER_PURCHASE = ("refreshInstance", "updateInstanceStatus", "upgradeInstance", "releaseInstance")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--mode", choices=MODES, default="lax")
    args = parser.parse_args()

    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *a):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            body = json.loads(raw or b"{}")
            activity = body.get("activity")
            answer = {"resultCode": "000000", "resultMsg": "success"}
            if args.mode == "repeat-error" and activity in AFTER_PURCHASE:
                asked = json.dumps(body, sort_keys=True)
                if asked in seen:
                    answer = {"resultCode": "000005", "resultMsg": "already done"}
                seen.add(asked)
            if activity == "newInstance":
                answer["instanceId"] = uuid.uuid4().hex
            elif activity == "queryInstance":
                answer["instanceId"] = body.get("instanceId")
                answer["appInfo"] = {
                    "frontEndUrl": "http://127.0.0.1/tenant/",
                    "adminUrl": "http://127.0.0.1/tenant/admin/",
                    "userName": "admin",
                    "password": "stub-password-do-not-leak",
                }
            payload = encode_body(answer)
            if args.mode == "not-json":
                payload = b"<html>oops</html>"
            elif args.mode == "no-result-code":
                payload = encode_body({"resultMsg": "success"})
            status = 500 if args.mode == "http-500" else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            if args.mode != "unsigned":
                self.send_header(
                    "Body-Sign",
                    body_sign_header(
                        args.secret,
                        args.access_key,
                        query.get("nonce", ""),
                        query.get("timestamp", ""),
                        payload,
                    ),
                )
            self.end_headers()
            if args.mode == "trickle":
                for byte in payload:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            else:
                self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    print(json.dumps({"event": "listening", "port": port}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
