/*
 * Reconciliation (sql/functions/43_reconciliation.sql): admins read what it found, resolve
 * differences and ask for a run; its tables stay in app_private with the owner (the worker).
 */

grant execute on function api.reconciliation_list(text, text, text, text), api.reconciliation_runs(text, text),
  api.reconciliation_run(jsonb), api.reconciliation_resolve(text, jsonb)
  to admin;
