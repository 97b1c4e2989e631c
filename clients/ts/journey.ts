// The citizen's journey with a client generated from openapi.yaml (openapi-typescript types
// + openapi-fetch), type-checked under `tsc --strict` in CI: captcha, entry, the lunar
// birth-date options, personal information, special needs, a free seat, the appointment,
// the payment at the sandbox bank (as a browser would), the receipt.
//
//   node journey.js http://127.0.0.1:8080 NATIONAL_ID SERIAL
import createClient from "openapi-fetch";
import type { components, paths } from "./ncr.js";

type Problem = components["schemas"]["Problem"];

const [base, nationalId, serial] = process.argv.slice(2);
if (!base || !nationalId || !serial) {
  throw new Error("usage: journey.js BASE_URL NATIONAL_ID SERIAL");
}
const api = createClient<paths>({ baseUrl: base });

function fail(step: string, error: Problem | undefined, status: number): never {
  throw new Error(`${step}: ${status} ${error ? `${error.code} ${error.detail}` : "(no problem body)"}`);
}

// 1. Captcha and entry.
const captcha = await api.GET("/api/v1/captcha", { params: { header: { "Accept-Language": "en" } } });
if (!captcha.data) fail("captcha", captcha.error, captcha.response.status);
const entry = await api.POST("/api/v1/citizen/sessions", {
  body: {
    national_id: nationalId,
    serial,
    captcha_id: captcha.data.captcha_id,
    captcha_answer: String(captcha.data.sandbox_answer ?? ""),
  },
});
if (!entry.data) fail("entry", entry.error, entry.response.status);
console.log(`entry: ${entry.response.status}, next step ${entry.data.next_step}, Location ${entry.response.headers.get("Location")}`);
const auth = { Authorization: `Bearer ${entry.data.token}` };

// 2. The lunar birth-date options for the solar date, then personal information.
const birthJalali = "1369-03-19";
const options = await api.GET("/api/v1/citizen/hijri-birth-date-options", {
  params: { query: { birth_date_jalali: birthJalali } },
  headers: auth,
});
if (!options.data) fail("lunar options", options.error, options.response.status);
const computed = options.data.options.find((o) => o.computed);
if (!computed) throw new Error("no computed lunar option");
const info = await api.PUT("/api/v1/citizen/application/personal-info", {
  body: {
    birth_date_jalali: birthJalali,
    birth_date_hijri: computed.date,
    gender: "female",
    religion: "islam",
    mother_name: "شهرزاد",
    mobile: "09145128136",
  },
  headers: auth,
});
if (!info.data) fail("personal info", info.error, info.response.status);
const needs = await api.PUT("/api/v1/citizen/application/special-needs", {
  body: { can_leave_home: true, can_climb_stairs: true, pupils_visible: true, fingers_intact: true },
  headers: auth,
});
if (!needs.data) fail("special needs", needs.error, needs.response.status);

// 3. The first day with a free seat in the city, and the appointment.
let seat: { office_id: string; date: string; shift: components["schemas"]["Shift"] } | undefined;
// Days are Tehran's (the booking window starts tomorrow in Tehran, UTC+03:30): a UTC date
// is still "today" there between 20:30 and 24:00 UTC.
const tehranDay = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Tehran" });
for (let ahead = 1; ahead <= 30 && !seat; ahead++) {
  const date = tehranDay.format(new Date(Date.now() + ahead * 86_400_000));
  const page = await api.GET("/api/v1/offices/availability", {
    params: { query: { date, city_code: "041" } },
    headers: auth,
  });
  if (!page.data) fail("availability", page.error, page.response.status);
  const row = page.data.items.find((r) => r.free > 0);
  if (row) seat = { office_id: row.office.id, date, shift: row.shift };
}
if (!seat) throw new Error("no free seat within 30 days");
const booked = await api.PUT("/api/v1/citizen/application/appointment", { body: seat, headers: auth });
if (!booked.data) fail("appointment", booked.error, booked.response.status);
console.log(`appointment: ${seat.office_id} ${seat.date} ${seat.shift}`);

// 4. The payment: started through the client, paid at the sandbox bank as a browser would.
const payment = await api.POST("/api/v1/citizen/application/payments", {
  params: { header: { "Idempotency-Key": `ts-journey-${Date.now()}` } },
  body: { gateway: "sandbox" },
  headers: auth,
});
if (!payment.data) fail("payment", payment.error, payment.response.status);
const payUrl = payment.data.redirect_url;
if (!payUrl) throw new Error("no redirect_url");
const bank = await fetch(payUrl, {
  method: "POST",
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
  body: "outcome=success",
});
const html = await bank.text();
const hidden = (name: string): string => {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!m?.[1]) throw new Error(`the bank's page has no ${name}`);
  return m[1];
};
const callback = await fetch(`${base}/api/v1/payments/sandbox/callback`, {
  method: "POST",
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ token: hidden("token"), order_id: hidden("order_id"), status: hidden("status") }),
  redirect: "manual",
});
if (callback.status !== 303) throw new Error(`callback: ${callback.status}`);

// 5. Registered, with a tracking code and a receipt.
const app = await api.GET("/api/v1/citizen/application", { headers: auth });
if (!app.data) fail("application", app.error, app.response.status);
if (app.data.state !== "registered" || !app.data.tracking_code) {
  throw new Error(`not registered: ${app.data.state}`);
}
const receipt = await api.GET("/api/v1/citizen/application/receipt", { headers: { ...auth, Accept: "application/json" } });
if (!receipt.data) fail("receipt", receipt.error, receipt.response.status);
// The operation also answers HTML and PDF (by Accept), so the type is a union: narrow it.
if (typeof receipt.data !== "object") throw new Error("the receipt is not JSON");
if (receipt.data.tracking_code !== app.data.tracking_code) throw new Error("receipt and application disagree");

// Lists are one shape: `items` and `next_cursor` (a string, or null on the last page).
const payments = await api.GET("/api/v1/citizen/application/payments", { params: { query: { limit: 1 } }, headers: auth });
if (!payments.data) fail("payments", payments.error, payments.response.status);
const settled = payments.data.items[0];
if (settled?.status !== "verified") throw new Error(`the payment is ${settled?.status}`);
const next: string | null = payments.data.next_cursor;
if (next !== null) throw new Error("one payment, yet a next page");

// A problem is typed too: the same payment again is refused with a code to switch on.
const again = await api.POST("/api/v1/citizen/application/payments", { body: { gateway: "sandbox" }, headers: auth });
if (again.data || !again.error?.code) throw new Error("a second payment was not refused with a problem");
console.log(`second payment: ${again.response.status} ${again.error.code}`);
console.log(`TS JOURNEY OK: tracking code ${app.data.tracking_code}`);
