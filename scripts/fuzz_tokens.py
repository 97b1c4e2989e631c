"""Gets valid tokens of every kind from a fresh embedded-default server (demo data), for
the contract fuzzer. Prints shell assignments."""
import json, sys, urllib.request, urllib.parse

base = sys.argv[1]

def call(method, path, body=None, token=None, form=False):
    data = None
    headers = {}
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")

cap = call("GET", "/api/v1/captcha")
citizen = call("POST", "/api/v1/citizen/sessions", {"national_id": "2580200606", "serial": "883810",
               "captcha_id": cap["captcha_id"], "captcha_answer": str(cap["sandbox_answer"])})["token"]
call("PUT", "/api/v1/citizen/application/personal-info", {"birth_date_jalali": "1369-03-19", "birth_date_hijri": "1410-11-15",
     "gender": "female", "religion": "islam", "mother_name": "شهرزاد", "mobile": "09145128136"}, citizen)
admin = call("POST", "/api/v1/staff/sessions", {"username": "admin", "password": "fuzz-admin-password"})["token"]
call("POST", "/api/v1/admin/staff", {"username": "fuzz.operator", "role": "operator", "office_id": "041-MRG-01",
     "password": "fuzz-operator-password"}, admin)
operator = call("POST", "/api/v1/staff/sessions", {"username": "fuzz.operator", "password": "fuzz-operator-password"})["token"]
def machine(client_id, kind):
    secret = call("POST", "/api/v1/admin/kiosk-clients", {"client_id": client_id, "name": client_id, "kind": kind}, admin)["client_secret"]
    return call("POST", "/api/v1/oauth/token", {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": secret}, form=True)["access_token"]
kiosk = machine("fuzz-kiosk", "kiosk")
production = machine("fuzz-production", "production")
# An e-folder account: register, read the credentials SMS off the sandbox phone (the
# server's outbox worker delivers it within seconds), log in, make the forced change.
import os, time
call("POST", "/api/v1/efolder/registrations", {"gender": "male", "national_id": "0632158743", "first_name": "رضا",
     "last_name": "حسینی", "father_name": "مهدی", "mobile": "09123456789", "postal_code": "5518743111"})
text = None
for _ in range(100):
    items = call("GET", "/api/v1/admin/sandbox/sms?to=09123456789", token=admin)["items"]
    text = next((m["text"] for m in items if "نام کاربری" in m["text"]), None)
    if text:
        break
    time.sleep(0.2)
if not text:
    sys.exit("the e-folder credentials SMS did not arrive")
fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
first = call("POST", "/api/v1/efolder/sessions", {"username": fields["نام کاربری"], "password": fields["کلمه عبور"]})["token"]
efolder = call("PUT", "/api/v1/efolder/password", {"current_password": fields["کلمه عبور"],
               "new_password": "fuzz e-folder passphrase"}, first)["token"]
ussd = os.environ.get("NCR_USSD__SECRET", "none")
print(f"CITIZEN_TOKEN='{citizen}'\nADMIN_TOKEN='{admin}'\nOPERATOR_TOKEN='{operator}'\nKIOSK_TOKEN='{kiosk}'")
print(f"PRODUCTION_TOKEN='{production}'\nEFOLDER_TOKEN='{efolder}'\nUSSD_SECRET='{ussd}'")
