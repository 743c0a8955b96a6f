/*
 * Metrics: what the database counts for the operator's Prometheus.
 *
 * Why here: the figures that say whether the marketplace is healthy beyond the HTTP layer (is
 * the job queue moving, are emails dying, are provider events applied, are hosts paid, is the
 * replica keeping up) are rows and catalog views. SQL says what is counted and how; the worker
 * (python -m api.worker with WORKER_METRICS_PORT, api/metrics.py) calls app_private.metrics()
 * at each scrape, as the owner, and passes the series on unchanged. A new series is a new
 * element here, and nothing in Python.
 *
 * Guarantees: one read-only statement; each count is over an index's few rows (the queue's
 * todo/doing jobs, dead letters, unapplied events, open or failed payouts), except the webhook
 * totals, which read the events table whole (about 50 ms a million events); every series is
 * there even when zero (an alert on a series that vanished would never fire), except the
 * per-task and per-replica ones, which exist while there is a job or a replica.
 */

create function app_private.metric_json(p_name text, p_type text, p_help text, p_samples jsonb) returns jsonb
language sql stable
as $$
  select jsonb_build_object('name', p_name, 'type', p_type, 'help', p_help, 'samples', coalesce(p_samples, '[]'))
$$;
comment on function app_private.metric_json(text, text, text, jsonb) is
  'One metric family as app_private.metrics() returns it: {name, type (gauge | counter; a counter''s series gets _total), help, samples: [{labels: {...}, value}]}; null samples: none.';

create function app_private.sample_json(p_labels jsonb, p_value numeric) returns jsonb
language sql stable
as $$
  select jsonb_build_object('labels', p_labels, 'value', p_value)
$$;
comment on function app_private.sample_json(jsonb, numeric) is
  'One sample of a metric family: its labels ({} for none) and value.';

create function app_private.metrics() returns jsonb
language sql stable
as $$
  with webhooks as (  -- read once for both totals
    select p.provider, count(e.provider) as received, coalesce(sum(e.deliveries - 1), 0) as duplicated
      from unnest(enum_range(null::app.payment_provider)) p (provider)
      left join app_private.webhook_events e on e.provider = p.provider
     group by 1
  )
  select jsonb_build_array(
    -- The job queue (procrastinate): what waits and runs, per task; and how long the oldest due job has waited.
    app_private.metric_json('nexus_jobs', 'gauge',
      'Jobs in the queue by task and status (todo: waiting or scheduled, doing: running).',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('task', j.task_name, 'status', j.status), j.n))
         from (select task_name, status::text as status, count(*) as n
                 from procrastinate.procrastinate_jobs
                where status in ('todo', 'doing')
                group by 1, 2) j)),
    app_private.metric_json('nexus_job_oldest_age_seconds', 'gauge',
      'How long the oldest job that is due has waited, per task (since it was deferred, or scheduled to run).',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('task', a.task_name), a.age))
         from (select j.task_name,
                      round(extract(epoch from now() - min(greatest(j.scheduled_at, d.at)))::numeric, 3) as age
                 from procrastinate.procrastinate_jobs j
                 left join lateral (select min(e.at) as at from procrastinate.procrastinate_events e
                                     where e.job_id = j.id and e.type = 'deferred') d on true
                where j.status = 'todo' and (j.scheduled_at is null or j.scheduled_at <= now())
                group by 1) a)),
    -- Emails the relay refused notification_settings.email_max_attempts times.
    app_private.metric_json('nexus_emails_dead', 'gauge',
      'Emails the relay refused every time (dead letters; an admin may resend them).',
      jsonb_build_array(app_private.sample_json('{}',
        (select count(*) from app.notifications n where n.email_state = 'dead')))),
    -- Provider webhook events, per provider.
    app_private.metric_json('nexus_webhook_events_received', 'counter',
      'Webhook events received whose signature verified, each counted once.',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('provider', w.provider), w.received)) from webhooks w)),
    app_private.metric_json('nexus_webhook_events_duplicated', 'counter',
      'Redeliveries of webhook events already received (they change nothing).',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('provider', w.provider), w.duplicated)) from webhooks w)),
    app_private.metric_json('nexus_webhook_events_failed', 'gauge',
      'Webhook events about an object Nexus acts on that were never applied and have no job left to apply them (its retries ran out).',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('provider', p.provider), coalesce(f.n, 0)))
         from unnest(enum_range(null::app.payment_provider)) p (provider)
         left join (select e.provider, count(*) as n
                      from app_private.webhook_events e
                     where e.processed_at is null and e.kind is not null
                       and not exists (
                         select from procrastinate.procrastinate_jobs j
                          where j.status in ('todo', 'doing') and j.task_name = 'payments.apply_event'
                            and j.args = jsonb_build_object('provider', e.provider, 'event_id', e.event_id))
                     group by 1) f using (provider))),
    -- Hosts' payouts that are not paid yet, or failed.
    app_private.metric_json('nexus_payouts', 'gauge',
      'Payouts by status: pending (no payout account yet), scheduled (a job sends it), failed (an admin may retry).',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('status', s.status), coalesce(o.n, 0)))
         from unnest(array['pending', 'scheduled', 'failed']::app.payout_status[]) s (status)
         left join (select status, count(*) as n from app.payouts
                     where status in ('pending', 'scheduled', 'failed') group by 1) o using (status))),
    -- Replication, from the primary's side (lag columns need pg_read_all_stats or pg_monitor).
    app_private.metric_json('nexus_replicas', 'gauge',
      'Standbys streaming from this database now.',
      jsonb_build_array(app_private.sample_json('{}', (select count(*) from pg_stat_replication)))),
    app_private.metric_json('nexus_replica_lag_seconds', 'gauge',
      'How far each standby''s replay is behind this primary in time (0 when caught up and idle); run on a standby, its own lag (replica "self": since the last transaction it replayed).',
      (select jsonb_agg(l.sample) from (
         select app_private.sample_json(jsonb_build_object('replica', coalesce(nullif(r.application_name, ''), host(r.client_addr), r.pid::text)),
                                        round(extract(epoch from coalesce(r.replay_lag, interval '0'))::numeric, 3)) as sample
           from pg_stat_replication r where r.replay_lsn is not null
         union all
         select app_private.sample_json('{"replica": "self"}',
                                        round(extract(epoch from now() - pg_last_xact_replay_timestamp())::numeric, 3))
          where pg_is_in_recovery() and pg_last_xact_replay_timestamp() is not null) l)),
    app_private.metric_json('nexus_replica_lag_bytes', 'gauge',
      'How far each standby''s replay is behind this primary in WAL bytes.',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('replica', coalesce(nullif(r.application_name, ''), host(r.client_addr), r.pid::text)),
                                                  pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)))
         from pg_stat_replication r where r.replay_lsn is not null and not pg_is_in_recovery())),
    -- The exchange-rate feed (rates.fetch, app_private.rate_feed).
    app_private.metric_json('nexus_exchange_rates_age_seconds', 'gauge',
      'Seconds since the exchange-rate feed last gave rates that were recorded (absent until it first has).',
      (select jsonb_agg(app_private.sample_json('{}', extract(epoch from now() - f.succeeded_at)))
         from app_private.rate_feed f where f.succeeded_at is not null)),
    app_private.metric_json('nexus_exchange_rates_failing', 'gauge',
      '1 when the exchange-rate feed''s last attempt recorded nothing (its error is on the admin System page), else 0.',
      (select jsonb_agg(app_private.sample_json('{}', (f.error is not null)::int)) from app_private.rate_feed f)),
    -- The reconciliation with the payment providers (payments.reconcile, sql/functions/43_reconciliation.sql).
    app_private.metric_json('nexus_reconciliation_differences', 'gauge',
      'Open differences between our books and a payment provider''s, by provider and kind (payment, refund, payout); an admin resolves each with a note.',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('provider', p.provider, 'kind', k.kind), coalesce(d.n, 0)))
         from unnest(enum_range(null::app.payment_provider)) p (provider)
         cross join unnest(array['payment', 'refund', 'payout']) k (kind)
         left join (select d.provider, d.kind, count(*) as n from app_private.reconciliation_differences d
                     where d.state = 'open' group by 1, 2) d on d.provider = p.provider and d.kind = k.kind)),
    app_private.metric_json('nexus_reconciliation_age_seconds', 'gauge',
      'Seconds since a reconciliation of the provider last succeeded (absent until one has).',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('provider', r.provider), extract(epoch from now() - r.at)))
         from (select r.provider, max(r.finished_at) as at from app_private.reconciliation_runs r
                where r.status = 'succeeded' group by 1) r)),
    app_private.metric_json('nexus_reconciliation_failing', 'gauge',
      '1 when the provider''s last reconciliation run failed (its error is on the admin System page), else 0 (absent until a run has ended).',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('provider', r.provider), (r.status = 'failed')::int))
         from (select distinct on (r.provider) r.provider, r.status from app_private.reconciliation_runs r
                where r.status <> 'running' order by r.provider, r.id desc) r)),
    -- WAL archiving (backups, docs/operations.md): failures, and the age of the last archived segment.
    app_private.metric_json('nexus_wal_archive_failures', 'counter',
      'WAL segments the archive_command failed to archive since the statistics were reset (pg_stat_archiver).',
      (select jsonb_agg(app_private.sample_json('{}', a.failed_count)) from pg_stat_archiver a
        where current_setting('archive_mode') <> 'off')),
    app_private.metric_json('nexus_wal_archive_age_seconds', 'gauge',
      'Seconds since a WAL segment was last archived (absent while archiving is off or before the first).',
      (select jsonb_agg(app_private.sample_json('{}', extract(epoch from now() - a.last_archived_time)))
         from pg_stat_archiver a where current_setting('archive_mode') <> 'off' and a.last_archived_time is not null)),
    -- The database itself.
    app_private.metric_json('nexus_database_size_bytes', 'gauge',
      'The database''s size on disk.',
      jsonb_build_array(app_private.sample_json('{}', pg_database_size(current_database())))),
    app_private.metric_json('nexus_database_connections', 'gauge',
      'Connections to this database by state (active, idle, idle in transaction, ...).',
      (select jsonb_agg(app_private.sample_json(jsonb_build_object('state', a.state), a.n))
         from (select coalesce(state, 'unknown') as state, count(*) as n from pg_stat_activity
                where datname = current_database() group by 1) a))
  )
$$;
comment on function app_private.metrics() is
  'The series the database contributes to the operator''s Prometheus, as a JSON array of app_private.metric families: the job queue per task (depth, oldest due job''s age), dead-lettered emails, webhook events received, duplicated and failed per provider, payouts pending, scheduled and failed, the exchange-rate feed''s age and failure, open reconciliation differences per provider and kind and each provider''s last reconciliation''s age and failure, WAL archiving failures and age, standbys and their lag, the database''s size and connections. Read at each scrape of the worker''s metrics endpoint (WORKER_METRICS_PORT, api/metrics.py). Owner only.';
