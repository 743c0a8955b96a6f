/*
 * The analyst's session defaults, from app_private.analyst_settings, re-applied by every migrate that re-applies the code.
 *
 * Defaults are only a first line: the analyst may change them for its session or even for its
 * role. The worker enforces the same numbers from outside (app_private.enforce_analyst_limits).
 */

select app_private.analyst_defaults_apply();
