/*
 * Analytics of money: payments, payouts, and the ledger summed by day and currency.
 *
 * Same rules as 80_analytics.sql: the owner's rights, no personal data (no guest or host ids,
 * no provider ids, no client secrets, no payout destinations, no free-text reasons).
 * Amounts are never summed across currencies.
 */

create view analytics.payments as
select p.id as payment_id, p.booking_id, p.provider, p.payment_method, p.status, p.amount, p.currency,
       p.booking_amount, p.booking_currency, p.rate, p.amount_refunded, p.created_at, p.succeeded_at,
       p.failed_at, p.canceled_at
from app.payments p;
comment on view analytics.payments is 'One row per payment attempt: provider, status, money and conversion. No parties, no provider ids.';
comment on column analytics.payments.payment_id is 'Payment id.';
comment on column analytics.payments.booking_id is 'The booking paid for (see analytics.bookings).';
comment on column analytics.payments.provider is 'stripe or paypal.';
comment on column analytics.payments.payment_method is 'credit_card or paypal.';
comment on column analytics.payments.status is 'See app.payment_status.';
comment on column analytics.payments.amount is 'What the guest paid (or was asked to pay), in currency.';
comment on column analytics.payments.currency is 'ISO 4217 code the guest paid in.';
comment on column analytics.payments.booking_amount is 'The booking''s total in booking_currency.';
comment on column analytics.payments.booking_currency is 'The listing''s currency.';
comment on column analytics.payments.rate is 'Exchange rate used (1 booking_currency = rate currency); null when the same.';
comment on column analytics.payments.amount_refunded is 'Refunded so far, in currency.';
comment on column analytics.payments.created_at is 'When the guest started paying.';
comment on column analytics.payments.succeeded_at is 'When the provider confirmed the money.';
comment on column analytics.payments.failed_at is 'When it failed.';
comment on column analytics.payments.canceled_at is 'When it was canceled.';

create view analytics.payouts as
select o.id as payout_id, o.booking_id, o.status, o.gross, o.fee_percent, o.fee, o.amount, o.currency, o.provider,
       o.created_at, o.paid_at, o.failed_at
from app.payouts o;
comment on view analytics.payouts is 'One row per host payout: gross, platform fee, amount paid out, status. No host identity or destination.';
comment on column analytics.payouts.payout_id is 'Payout id.';
comment on column analytics.payouts.booking_id is 'The booking paid out.';
comment on column analytics.payouts.status is 'pending, scheduled, processing, paid or failed.';
comment on column analytics.payouts.gross is 'What the guest paid net of refunds, in currency.';
comment on column analytics.payouts.fee_percent is 'Platform fee in percent when computed.';
comment on column analytics.payouts.fee is 'The platform''s fee.';
comment on column analytics.payouts.amount is 'Paid (or owed) to the host: gross - fee.';
comment on column analytics.payouts.currency is 'The listing''s currency.';
comment on column analytics.payouts.provider is 'Through which provider it was sent (null while pending).';
comment on column analytics.payouts.created_at is 'When computed.';
comment on column analytics.payouts.paid_at is 'When paid.';
comment on column analytics.payouts.failed_at is 'When it last failed.';

create view analytics.money_daily as
select (e.created_at at time zone 'UTC')::date as day, e.currency,
       coalesce(-sum(e.amount) filter (where e.account = 'guest' and e.memo = 'payment'), 0) as paid_in,
       coalesce(sum(e.amount) filter (where e.account = 'guest' and e.memo = 'refund'), 0) as refunded,
       coalesce(sum(e.amount) filter (where e.account = 'platform_fee'), 0) as fees,
       coalesce(sum(e.amount) filter (where e.account = 'host_payable' and e.amount > 0), 0) as owed_to_hosts,
       coalesce(sum(e.amount) filter (where e.account = 'host'), 0) as paid_out
from app.ledger_entries e
group by 1, 2;
comment on view analytics.money_daily is 'The ledger per UTC day and currency: money paid in by guests, refunded to them, the platform''s fees, what became owed to hosts, and what was paid out. Read from app.ledger_entries, the one record of money.';
comment on column analytics.money_daily.day is 'UTC day of the postings.';
comment on column analytics.money_daily.currency is 'ISO 4217 code.';
comment on column analytics.money_daily.paid_in is 'Payments that succeeded that day.';
comment on column analytics.money_daily.refunded is 'Refunds that succeeded that day.';
comment on column analytics.money_daily.fees is 'Platform fees earned that day (when payouts were computed).';
comment on column analytics.money_daily.owed_to_hosts is 'Payouts computed that day (what the platform came to owe hosts).';
comment on column analytics.money_daily.paid_out is 'Payouts the providers confirmed that day.';
