/*
 * Channels: the names the product NOTIFYs and LISTENs on, secret to client roles.
 *
 * Why: any role may NOTIFY or LISTEN on any channel it can name (PostgreSQL has no privilege
 * for either), and the analyst logs in with psql. So every channel is
 * 'nexus_<name>_<suffix>', the suffix in app_private.channels (migration 0020), and:
 *   - the database sends through app_private.channel(<name>): app_private.notify
 *     (60_notifications.sql, 'notifications') and app.tg__catalog_changed
 *     (23_catalog_cache.sql, 'catalog'), both as the owner;
 *   - the API's listeners (api/events.py, api/cache.py) ask app.listen_channels() once per
 *     listening connection, as the login role `authenticator`, the only role granted it
 *     (sql/policies/04_channels.sql).
 * Guarantees: no client role can read a name, so a NOTIFY from one reaches no listener of
 * the product's, and a LISTEN from one hears nothing of it.
 */

create function app_private.channel(p_name text) returns text
language sql stable security invoker
as $$
  select 'nexus_' || p_name || '_' || c.suffix from app_private.channels c where c.id
$$;
comment on function app_private.channel(text) is
  'The name of the product''s NOTIFY channel p_name (notifications, catalog): ''nexus_<p_name>_<suffix>'', the suffix from app_private.channels. Called by the owner''s SECURITY DEFINER functions only; no grant.';

create function app.listen_channels() returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('notifications', app_private.channel('notifications'),
                           'catalog', app_private.channel('catalog'))
$$;
comment on function app.listen_channels() is
  'The channels the API listens on, {"notifications": ..., "catalog": ...}: asked once per listening connection by api/events.py and api/cache.py. Security definer: it reads app_private.channels; executable by the login role authenticator only, so no client role learns the names.';
