"""Writes the schemathesis configuration for scripts/contract-fuzz from the served contract:
one [[operations]] block per operation, so each operation accepts, for schema-valid data,
only the statuses its own contract documents (never 400, 413, 415 or a 5xx: a request the
contract calls valid is never malformed, too large or of the wrong type), plus the
credentials it needs (an operator's token for /office/, the production line's for
/production/, the USSD gateway's secret).

    python3 scripts/fuzz_config.py http://127.0.0.1:PORT > schemathesis.toml
"""
import json
import sys
import urllib.request

base = sys.argv[1]
with urllib.request.urlopen(base + "/api/v1/openapi.json") as r:
    doc = json.load(r)

NEVER_FOR_VALID_DATA = {"400", "413", "415"}
# RFC 6749 §5.2: a well-formed request the authorization server refuses (unknown grant
# type, a scope the client does not hold) is 400 with an OAuth error code.
OAUTH_400 = {"/api/v1/oauth/token"}

print("request-timeout = 15.0")
print("[auth.openapi.citizen]\nbearer = \"${CITIZEN_TOKEN}\"")
print("[auth.openapi.staff]\nbearer = \"${ADMIN_TOKEN}\"")
print("[auth.openapi.efolder]\nbearer = \"${EFOLDER_TOKEN}\"")

count = 0
for path, item in sorted(doc["paths"].items()):
    for method, op in sorted(item.items()):
        if method not in ("get", "post", "put", "patch", "delete"):
            continue
        codes = sorted(op.get("responses", {}).keys())
        expected = [
            c for c in codes
            if c[0] in "234" and (c not in NEVER_FOR_VALID_DATA or (c == "400" and path in OAUTH_400))
        ]
        if not any(c[0] in "23" for c in expected):
            sys.exit(f"{method.upper()} {path} documents no success status")
        headers = {}
        if path.startswith("/api/v1/office/"):
            headers["Authorization"] = "Bearer ${OPERATOR_TOKEN}"
        elif path.startswith("/api/v1/kiosk/"):
            # The machine scheme is OAuth 2.0 client credentials: its tokens go as headers.
            headers["Authorization"] = "Bearer ${KIOSK_TOKEN}"
        elif path.startswith("/api/v1/production/"):
            headers["Authorization"] = "Bearer ${PRODUCTION_TOKEN}"
        elif path.startswith("/api/v1/ussd"):
            headers["X-USSD-Secret"] = "${USSD_SECRET}"
        print()
        print("[[operations]]")
        # One filter (filters of a block are OR-ed): the operation's label, "METHOD /path".
        print(f"include-name = {json.dumps(method.upper() + ' ' + path)}")
        print("checks.positive_data_acceptance.expected-statuses = [" + ", ".join(json.dumps(c) for c in expected) + "]")
        if headers:
            print("headers = { " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in headers.items()) + " }")
        count += 1
print(f"fuzz_config: {count} operations, each with its own documented statuses", file=sys.stderr)
