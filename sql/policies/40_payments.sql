/*
 * Payments: who may see payments and rates, and call the payment functions.
 *
 * Payments are written only by the SECURITY DEFINER functions in
 * sql/functions/40_payments.sql (and the worker, as the owner), so no client role holds
 * insert/update/delete on app.payments. A guest reads their own payments, a host those of
 * their listings (app.payment_json leaves out the client secret for anyone but the guest),
 * admins all. Exchange rates are public facts; admins add them.
 */

grant select on app.payments to guest, host, admin;
create policy select_own on app.payments for select to guest, host, admin
  using (guest_id = (select app.current_user_id()));
create policy select_as_host on app.payments for select to guest, host, admin
  using (host_id = (select app.current_user_id()));
create policy select_as_admin on app.payments for select to admin using (true);

grant select on app.exchange_rates to anon, guest, host, admin;
grant insert (base, quote, rate, source) on app.exchange_rates to admin;
create policy select_all on app.exchange_rates for select to anon, guest, host, admin using (true);
create policy insert_as_admin on app.exchange_rates for insert to admin with check (source = 'admin');

-- Helpers the invoker functions need:
grant execute on function app.minor_units(text), app.exchange_rate(text, text) to anon, guest, host, admin;
grant execute on function app.payment_json(app.payments) to guest, host, admin;

-- The endpoints (api/routes.py, "payments" block):
grant execute on function api.currency_list(text, text) to anon, guest, host, admin;
grant execute on function api.exchange_rate_set(jsonb) to admin;
grant execute on function api.payment_create(text, jsonb, text), api.payment_get(text),
  api.payment_list(text, text, text, text, text, text, text, text)
  to guest, host, admin;
-- What only the API process may assert: a provider object it created, an event whose signature it verified.
grant execute on function api.payment_attach(uuid, text, text, text), api.webhook_receive(text, text, text, text, text)
  to api_internal;
-- app_private.* (payment_apply, refund_apply, payout_apply, payout_open, ledger_post, defer, ...) stay with the owner: the worker.
grant execute on function api.payment_capture(text) to guest, host, admin;
grant execute on function api.payment_report(text, text, text, bigint, text, text) to api_internal;

-- Refunds: read with their payment (guest, host, admin); written by SECURITY DEFINER functions only.
grant select on app.refunds to guest, host, admin;
create policy select_own on app.refunds for select to guest, host, admin
  using (guest_id = (select app.current_user_id()));
create policy select_as_host on app.refunds for select to guest, host, admin
  using (host_id = (select app.current_user_id()));
create policy select_as_admin on app.refunds for select to admin using (true);
grant execute on function app.refund_json(app.refunds) to guest, host, admin;
grant execute on function api.payment_refund(text, jsonb), api.refund_retry(text) to admin;

-- Payout accounts: a host reads their own; set through api.payout_account_set.
grant select on app.payout_accounts to host, admin;
create policy select_own on app.payout_accounts for select to host, admin
  using (host_id = (select app.current_user_id()));
create policy select_as_admin on app.payout_accounts for select to admin using (true);
grant execute on function app.payout_account_json(app.payout_accounts) to host, admin;
grant execute on function api.payout_account_get(), api.payout_account_set(jsonb) to host;
grant execute on function api.payout_account_attach(uuid, text, text) to api_internal;

-- Payouts: hosts their own, admins all; admins retry a failed one.
grant select on app.payouts to host, admin;
create policy select_own on app.payouts for select to host, admin
  using (host_id = (select app.current_user_id()));
create policy select_as_admin on app.payouts for select to admin using (true);
grant execute on function app.payout_json(app.payouts) to host, admin;
grant execute on function api.payout_list(text, text, text) to host, admin;
grant execute on function api.payout_retry(text) to admin;

-- The ledger: admins read it (the dashboard); analysts see it summed in analytics views.
grant select on app.ledger_entries to admin;
create policy select_as_admin on app.ledger_entries for select to admin using (true);

-- Disputes: read like refunds (the guest, the host, admins); written by the worker only.
grant select on app.disputes to guest, host, admin;
create policy select_own on app.disputes for select to guest, host, admin
  using (guest_id = (select app.current_user_id()));
create policy select_as_host on app.disputes for select to guest, host, admin
  using (host_id = (select app.current_user_id()));
create policy select_as_admin on app.disputes for select to admin using (true);
grant execute on function app.dispute_json(app.disputes) to guest, host, admin;
grant execute on function api.dispute_list(text, text, text) to guest, host, admin;
