/*
 * The catalog cache's invalidations: every change to what a public catalog read shows is
 * announced when it commits.
 *
 * Why: each API process keeps anonymous catalog reads in memory (api/cache.py). It must drop
 * what a write makes stale on every process of every instance, at once, whoever wrote (the
 * API, the worker, a DBA in psql). So the tables say it themselves: a trigger NOTIFYs channel
 * app_private.channel('catalog') (a secret name, so no client role can empty the caches:
 * 04_channels.sql) with 'p:<listing id>' (that listing's detail, availability and reviews, and
 * every list) or '*' (everything: categories, amenities and currencies are in every listing,
 * a host's or reviewer's public name and photo in many). NOTIFY is transactional: it is heard
 * only if the change commits, and the same payload twice in a transaction is sent once.
 *
 * Guarantees: a listing, its photos, amenities, calendar (bookings hold dates through it) and
 * reviews announce their listing; categories, amenities, currencies and a user's public
 * profile (first name, photo, active) announce everything.
 */

create function app.tg__catalog_changed() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_channel text := app_private.channel('catalog');
begin
  if tg_argv[0] = '*' then
    perform pg_notify(v_channel, '*');
  elsif tg_op = 'DELETE' then
    perform pg_notify(v_channel, 'p:' || (to_jsonb(old) ->> tg_argv[0]));
  else
    perform pg_notify(v_channel, 'p:' || (to_jsonb(new) ->> tg_argv[0]));
  end if;
  return null;
end
$$;
comment on function app.tg__catalog_changed() is
  'AFTER trigger: NOTIFY app_private.channel(''catalog'') with p:<the row''s column named by the trigger''s argument> (a listing id), or * when the argument is *. Heard by every API process''s catalog cache (api/cache.py) once the change commits. Security definer: it reads the channel''s secret name (app_private.channels), whoever writes.';

create trigger products_catalog_changed after insert or update or delete on app.products
  for each row execute function app.tg__catalog_changed('id');
create trigger product_photos_catalog_changed after insert or update or delete on app.product_photos
  for each row execute function app.tg__catalog_changed('product_id');
create trigger product_amenities_catalog_changed after insert or update or delete on app.product_amenities
  for each row execute function app.tg__catalog_changed('product_id');
create trigger calendar_entries_catalog_changed after insert or update or delete on app.calendar_entries
  for each row execute function app.tg__catalog_changed('product_id');
create trigger reviews_catalog_changed after insert or update or delete on app.reviews
  for each row execute function app.tg__catalog_changed('product_id');
create trigger categories_catalog_changed after insert or update or delete on app.categories
  for each statement execute function app.tg__catalog_changed('*');
create trigger amenities_catalog_changed after insert or update or delete on app.amenities
  for each statement execute function app.tg__catalog_changed('*');
create trigger currencies_catalog_changed after insert or update or delete on app.currencies
  for each statement execute function app.tg__catalog_changed('*');
create trigger users_catalog_changed after update of first_name, photo_path, is_active on app.users
  for each row when (old.first_name is distinct from new.first_name or old.photo_path is distinct from new.photo_path
                     or old.is_active is distinct from new.is_active)
  execute function app.tg__catalog_changed('*');
