-- Behind the load balancer (issue 17).
-- The caller's address in the audit log (the client's own, through trusted proxies).
ALTER TABLE audit_log ADD COLUMN client_ip TEXT;
-- Which worker's claim an outbox row is under: leases are short and renewed while the
-- worker sends, so the claim is told apart by this token rather than by its end time.
ALTER TABLE outbox ADD COLUMN claim_token TEXT;
-- The sandbox phone de-duplicates by the sender's message id, as Kavenegar's `localid`
-- does: a message handed over twice (a worker died between the send and its record) is
-- one text.
ALTER TABLE sandbox_sms ADD COLUMN local_id TEXT;
CREATE UNIQUE INDEX sandbox_sms_local_id ON sandbox_sms (local_id);
