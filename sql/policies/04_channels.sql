/*
 * Channels: only the API's login role learns the product's NOTIFY channel names.
 *
 * The listeners (api/events.py, api/cache.py) connect as `authenticator` and ask
 * app.listen_channels() before anything else, without switching role: authenticator is
 * NOINHERIT, so the grant is to it directly. No other role is granted it (anon, guest, host,
 * admin and api_internal included: a request's role has nothing to listen to), and nothing
 * is granted on app_private.channels or app_private.channel.
 */

grant usage on schema app to authenticator;
grant execute on function app.listen_channels() to authenticator;
