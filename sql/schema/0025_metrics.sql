/*
 * 0025 metrics: what the database counts for the operator's Prometheus (app_private.metrics(),
 * sql/functions/90_metrics.sql) that it did not keep before.
 *
 * Why: a provider redelivers a webhook event it thinks we missed; the redelivery changed nothing
 * and left no trace, so nobody could see a provider retrying (our answers slow or failing) or
 * count duplicates. Each event now counts its deliveries. And "which events were never
 * applied" must stay cheap to ask at every scrape while the table grows: a partial index holds
 * only the events still waiting to be applied (a handful, not every event ever received).
 *
 * Guarantees after this file: app_private.webhook_events.deliveries is how many times the
 * provider sent the event (1 the first time; api.webhook_receive adds one per redelivery), and
 * the events not yet applied are found by an index of their own.
 */

alter table app_private.webhook_events add column deliveries integer not null default 1 check (deliveries >= 1);
comment on column app_private.webhook_events.deliveries is
  'How many times the provider delivered the event (1: once; a redelivery adds one and changes nothing else).';

create index webhook_events_unapplied_idx on app_private.webhook_events (received_at)
  where processed_at is null and kind is not null;
comment on index app_private.webhook_events_unapplied_idx is
  'The events about an object Nexus acts on that the worker has not applied yet (app_private.metrics(): failed ones).';
