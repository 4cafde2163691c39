-- Gateway top-ups and refunds (issue 4), on top of migration 9.

-- What the app needs to open the gateway's checkout, as the gateway plugin
-- returned it: Khalti's pidx and payment_url, eSewa's signed form, Stripe's
-- client_secret. JSON text.
ALTER TABLE payment_intents ADD COLUMN client_payload TEXT;

-- The money movement of a processed refund (a `refund` transaction), and why
-- the last attempt to process it failed.
ALTER TABLE refunds ADD COLUMN refund_transaction_id INTEGER REFERENCES transactions (id);
ALTER TABLE refunds ADD COLUMN last_error TEXT;
CREATE INDEX refunds_status ON refunds (status, id);
