/*
 * Media: how a photo looks in JSON, and the jobs that make and remove its files.
 *
 * What: a photo (a listing's, or a user's profile photo) is one original in the media storage
 * (api/storage.py: a local folder, or an S3 bucket every instance shares) plus the WebP
 * variants the worker makes from it. app.photo_json (00_core.sql) is the one JSON shape of a photo.
 *
 * Why triggers: the files follow the rows, whoever writes them. Inserting a photo row defers
 * media.make_variants; deleting one (a photo, a listing's cascade, an account's row) or
 * replacing a profile photo defers media.delete, in the same transaction: the job exists
 * exactly when the change commits, is retried until the storage answers, and a rolled-back
 * change defers nothing. Jobs of one path run one at a time (lock media:<path>), so variants
 * are never written after their photo's deletion has run.
 *
 * Guarantees: no photo row without a job that makes its variants; no deleted photo whose files
 * outlive a successful media.delete; an upload whose row never committed is an orphan, which
 * the hourly sweep (media.sweep) removes once it is a day old.
 */

create function app.tg_product_photos__media() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    perform app_private.defer('media.make_variants', jsonb_build_object('path', new.path), 'media:' || new.path);
  else
    perform app_private.defer('media.delete', jsonb_build_object('path', old.path), 'media:' || old.path);
  end if;
  return null;
end
$$;
comment on function app.tg_product_photos__media() is
  'Trigger: a new listing photo defers media.make_variants, a deleted one (also by its listing''s deletion) media.delete, in the same transaction. Security definer: it writes the job queue (schema procrastinate), which client roles cannot.';
create trigger product_photos_media after insert or delete on app.product_photos
  for each row execute function app.tg_product_photos__media();

create function app.tg_users__media() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'UPDATE' and new.photo_path is not null and new.photo_path is distinct from old.photo_path then
    perform app_private.defer('media.make_variants', jsonb_build_object('path', new.photo_path), 'media:' || new.photo_path);
  end if;
  if old.photo_path is not null and (tg_op = 'DELETE' or old.photo_path is distinct from new.photo_path) then
    perform app_private.defer('media.delete', jsonb_build_object('path', old.photo_path), 'media:' || old.photo_path);
  end if;
  return null;
end
$$;
comment on function app.tg_users__media() is
  'Trigger: a new profile photo defers media.make_variants; a replaced or removed one, or a deleted user''s, media.delete. Security definer: it writes the job queue (schema procrastinate), which client roles cannot.';
create trigger users_media after update of photo_path or delete on app.users
  for each row execute function app.tg_users__media();

create function app_private.media_photo(p_path text) returns jsonb
language sql stable security invoker
as $$
  select coalesce(
    (select jsonb_build_object('path', ph.path, 'variants', ph.variants) from app.product_photos ph where ph.path = p_path),
    (select jsonb_build_object('path', u.photo_path, 'variants', u.photo_variants) from app.users u where u.photo_path = p_path))
$$;
comment on function app_private.media_photo(text) is
  'The listing or profile photo stored under p_path: {path, variants}; null when no row uses it (deleted, or never committed). The worker''s media jobs ask it first.';

create function app_private.media_variants_set(p_path text, p_width int, p_height int, p_variants jsonb)
returns text
language plpgsql volatile security invoker
as $$
begin
  update app.product_photos ph
     set variants = p_variants, width = coalesce(ph.width, p_width), height = coalesce(ph.height, p_height)
   where ph.path = p_path;
  if found then
    return 'listing photo';
  end if;
  update app.users u
     set photo_variants = p_variants, photo_width = coalesce(u.photo_width, p_width),
         photo_height = coalesce(u.photo_height, p_height)
   where u.photo_path = p_path;
  return case when found then 'profile photo' else 'gone' end;
end
$$;
comment on function app_private.media_variants_set(text, int, int, jsonb) is
  'Record the variants the worker made for the photo under p_path ([{path, width, height}]) and, for a photo stored before its size was recorded, its width and height. Returns which photo it was, or gone when no row uses the path any more (the worker then removes the files it made).';

create function app_private.media_in_use(p_paths text[]) returns text[]
language sql stable security invoker
as $$
  select coalesce(array_agg(p), '{}') from unnest(p_paths) p
   where exists (select from app.product_photos ph where ph.path = p)
      or exists (select from app.users u where u.photo_path = p)
$$;
comment on function app_private.media_in_use(text[]) is
  'Which of these original paths a listing or profile photo uses (through their unique indexes). The orphan sweep keeps their files and removes the rest.';

create function app_private.media_backfill() returns int
language sql volatile security invoker
as $$
  with legacy as (
    select ph.path from app.product_photos ph where ph.width is null
    union all
    select u.photo_path from app.users u where u.photo_path is not null and u.photo_width is null)
  select count(app_private.defer('media.make_variants', jsonb_build_object('path', path), 'media:' || path))::int
    from legacy
$$;
comment on function app_private.media_backfill() is
  'Defer media.make_variants for every photo stored before photos had sizes and variants (width is null); returns how many. make media-migrate runs it; running it twice defers the same jobs again, which find their work done.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('ImageVariant', 'A smaller WebP copy of a photo, for srcset.', '{"url": "string", "width": "integer", "height": "integer"}');
select app.api_schema('Image', 'A photo (app.photo_json): the original and its smaller copies, for srcset; placeholder is its average colour.', '{
  "url": "string", "width": "integer?", "height": "integer?", "size_bytes": "integer?", "placeholder": "string?",
  "variants": "[ImageVariant]"}');
