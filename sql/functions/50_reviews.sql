/*
 * Reviews: a guest reviews a completed stay, the host responds, admins moderate.
 *
 * Writes are SECURITY DEFINER (no client role writes app.reviews) and check the caller
 * explicitly; reads are SECURITY INVOKER under the policies in sql/policies/50_reviews.sql
 * (visible reviews for everyone; hidden ones for their author, the listing's host, admins).
 * The listing's rating_avg and rating_count follow every change in the same transaction
 * (app.tg_reviews__rate), counted over visible reviews only.
 */

create function app_private.review_config() returns app_private.review_settings
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select s from app_private.review_settings s where s.id
$$;
comment on function app_private.review_config() is
  'The review settings row (app_private.review_settings): window_days, edit_hours. Change them as the owner: update app_private.review_settings set window_days = 30;';

create trigger reviews_set_updated_at before update on app.reviews
  for each row execute function app.tg__set_updated_at();

create function app.tg_reviews__rate() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_product uuid := coalesce(new.product_id, old.product_id);
begin
  if tg_op = 'UPDATE' and new.rating = old.rating and (new.hidden_at is null) = (old.hidden_at is null) then
    return null;
  end if;
  -- Lock the listing first: the count below then runs in a snapshot that sees every review
  -- committed before the lock was granted, so concurrent reviews of one listing stay exact.
  -- NO KEY UPDATE, not UPDATE: it must not conflict with the KEY SHARE locks that the other
  -- reviews' foreign keys hold on the listing (that would deadlock).
  perform from app.products p where p.id = v_product for no key update;
  update app.products p
     set rating_count = r.n, rating_avg = coalesce(round(r.average, 2), 0)
    from (select count(*)::int as n, avg(rating) as average
            from app.reviews
           where product_id = v_product and hidden_at is null) r
   where p.id = v_product;
  return null;
end
$$;
comment on function app.tg_reviews__rate() is
  'Trigger: a review written, re-rated, hidden, unhidden or removed recomputes its listing''s rating_count and rating_avg (rounded to 2 decimals, 0 when none) over visible reviews, in the same transaction, under a lock on the listing so concurrent reviews never lose a count.';

create trigger reviews_rate after insert or update or delete on app.reviews
  for each row execute function app.tg_reviews__rate();

create function app.reviewer_profiles(p_ids uuid[])
returns table (id uuid, first_name text, photo_url text)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  return query
  select u.id, u.first_name, app.avatar_url(u.photo_path, u.photo_variants)
  from app.users u
  where u.id = any(p_ids)
    and exists (select from app.reviews r where r.guest_id = u.id);
end
$$;
comment on function app.reviewer_profiles(uuid[]) is
  'The public profile (id, first name, photo URL; never email or phone) of those of the given users who wrote a review. Security definer: users are otherwise visible only to themselves and admins. PL/pgSQL with a generic plan, as app.public_profiles: called once per review of a page, a SQL function with SET would be parsed and planned on every call.';

create function app.review_json(r app.reviews, p_reviewer_first_name text, p_reviewer_photo_url text) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', r.id, 'product_id', r.product_id, 'booking_id', r.booking_id, 'rating', r.rating, 'comment', r.comment,
    'reviewer', jsonb_build_object('id', r.guest_id, 'first_name', p_reviewer_first_name, 'photo_url', p_reviewer_photo_url),
    'response', case when r.response is not null
                     then jsonb_build_object('body', r.response, 'host_id', r.host_id, 'responded_at', r.responded_at) end,
    'hidden', r.hidden_at is not null,
    'created_at', r.created_at, 'updated_at', r.updated_at)
  -- Moderation is shown to those who still see a hidden review: its author, the host, admins.
  || case when r.hidden_at is not null
          then jsonb_build_object('hidden_at', r.hidden_at, 'hidden_reason', r.hidden_reason)
          else '{}'::jsonb end
$$;
comment on function app.review_json(app.reviews, text, text) is
  'A review as the API shows it: rating, comment, the reviewer''s public profile {id, first_name, photo_url}, the host''s response {body, host_id, responded_at} or null, hidden (with hidden_at and hidden_reason when true).';

create function app.review_detail(p_id uuid) returns jsonb
language plpgsql stable security invoker
as $$
declare
  v_review jsonb;
begin
  select app.review_json(r, pr.first_name, pr.photo_url)
    into v_review
  from app.reviews r
  left join app.reviewer_profiles(array[r.guest_id]) pr on true
  where r.id = p_id;
  return v_review;
end
$$;
comment on function app.review_detail(uuid) is
  'One review (app.review_json), or null when the caller may not see it. PL/pgSQL so that its statement is planned once per session (a SQL function with a FROM is planned on every call).';

create function app.review_for_update(p_id text) returns app.reviews
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_review app.reviews;
begin
  select * into v_review from app.reviews r where r.id = app.parse_uuid(p_id) for update;
  -- Whoever may see it may be told they cannot change it; anyone else learns nothing.
  -- why: "its author, the listing's host or an admin" is about the row, which no grant can say.
  if not found or not (v_review.hidden_at is null or v_review.guest_id = v_uid or v_review.host_id = v_uid
                       or app.is_admin()) then
    perform app.fail(404, 'Not found.');
  end if;
  return v_review;
end
$$;
comment on function app.review_for_update(text) is
  'The review a path names, locked for update, when the caller can see it (visible, or hidden and theirs, their listing''s, or an admin''s); a 404 otherwise.';

-- ---------------------------------------------------------------------------------
-- Writing
-- ---------------------------------------------------------------------------------

create function app.review_errors(p_body jsonb, p_partial boolean) returns jsonb
language sql immutable security invoker
as $$
  select app.check_text(
           app.add_error('{}', 'rating', case
             when p_body -> 'rating' is null and p_partial then null
             when p_body -> 'rating' is null or jsonb_typeof(p_body -> 'rating') = 'null' then 'This field is required.'
             when jsonb_typeof(p_body -> 'rating') <> 'number' or (p_body ->> 'rating')::numeric not in (1, 2, 3, 4, 5)
               then 'Must be a whole number from 1 to 5.'
           end),
           p_body, 'comment', 1, 5000, p_required => not p_partial)
$$;
comment on function app.review_errors(jsonb, boolean) is
  'Every problem with a review body: rating a whole number 1-5, comment 1-5000 characters (both required unless p_partial: then only those present are checked), as an errors object for app.raise_errors.';

create function api.review_create(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_booking app.bookings := app.booking_for_party(p_id);
  v_cfg app_private.review_settings := app_private.review_config();
  v_review app.reviews;
begin
  if v_booking.guest_id is distinct from v_uid then
    perform app.fail(403, 'Only the booking''s guest can review the stay.');
  end if;
  perform app.raise_errors(app.review_errors(p_body, false));
  if v_booking.status <> 'completed' then
    perform app.fail(409, format('A %s booking cannot be reviewed; only a completed stay can.', v_booking.status), 'status');
  end if;
  if exists (select from app.reviews r where r.booking_id = v_booking.id) then
    perform app.fail(409, 'This stay has already been reviewed; edit that review instead.', 'booking_id');
  end if;
  if now() > (v_booking.end_date + (app_private.booking_config()).check_out_time) at time zone 'UTC'
             + make_interval(days => v_cfg.window_days) then
    perform app.fail(409, format('Reviews are written within %s days of check-out.', v_cfg.window_days), 'booking_id');
  end if;
  insert into app.reviews (booking_id, product_id, guest_id, host_id, rating, comment)
  values (v_booking.id, v_booking.product_id, v_booking.guest_id, v_booking.host_id,
          (p_body ->> 'rating')::smallint, btrim(p_body ->> 'comment'))
  returning * into v_review;
  return app.review_json(v_review, (select first_name from app.users where id = v_uid),
                         (select app.avatar_url(photo_path, photo_variants) from app.users where id = v_uid));
exception when unique_violation then
  -- A concurrent request reviewed this booking first.
  perform app.fail(409, 'This stay has already been reviewed; edit that review instead.', 'booking_id');
end
$$;
comment on function api.review_create(text, jsonb) is
  'POST /api/bookings/{id}/review/ {rating, comment} — the booking''s guest reviews a completed stay, once, within review_settings.window_days (default 14) after check-out. 400 naming rating (whole number 1-5) or comment (1-5000 characters); 403 for the host or an admin; 409 naming why when the stay is not completed, already reviewed or past the window; 404 for anyone else. The listing''s rating follows at once. Security definer: no client role may insert into app.reviews; it finds the stay through app.booking_for_party (owner only) and reads the review and booking settings in app_private.';

create function api.review_update(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_review app.reviews := app.review_for_update(p_id);
  v_cfg app_private.review_settings := app_private.review_config();
begin
  if v_review.guest_id is distinct from app.current_user_id() then
    perform app.fail(403, 'Only the review''s author can edit it.');
  end if;
  perform app.raise_errors(app.review_errors(p_body, true));
  if v_review.response is not null then
    perform app.fail(409, 'The host has responded; the review can no longer be edited.', 'response');
  end if;
  if now() > v_review.created_at + make_interval(hours => v_cfg.edit_hours) then
    perform app.fail(409, format('Reviews can be edited for %s hours after they are written.', v_cfg.edit_hours), 'created_at');
  end if;
  update app.reviews r
     set rating = coalesce((p_body ->> 'rating')::smallint, r.rating),
         comment = coalesce(btrim(p_body ->> 'comment'), r.comment)
   where r.id = v_review.id;
  return app.review_detail(v_review.id);
end
$$;
comment on function api.review_update(text, jsonb) is
  'PATCH /api/reviews/{id}/ {rating?, comment?} — the author edits their review within review_settings.edit_hours (default 48) of writing it, never once the host has responded (409 naming why). 400 naming the field; 403 for anyone else who can see it; 404 otherwise. Security definer: no client role may update app.reviews; it finds the review through app.review_for_update (owner only) and reads app_private.review_settings.';

create function api.review_respond(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_review app.reviews := app.review_for_update(p_id);
begin
  if v_review.host_id is distinct from app.current_user_id() then
    perform app.fail(403, 'Only the listing''s host can respond to a review.');
  end if;
  perform app.raise_errors(app.check_text('{}', p_body, 'body', 1, 5000, p_required => true));
  update app.reviews r set response = btrim(p_body ->> 'body'), responded_at = now() where r.id = v_review.id;
  return app.review_detail(v_review.id);
end
$$;
comment on function api.review_respond(text, jsonb) is
  'PUT /api/reviews/{id}/response/ {body} — the listing''s host writes their one response to a review, or rewrites it (1-5000 characters). Once there is a response the author can no longer edit the review. 400 naming body; 403 for anyone else who can see the review; 404 otherwise. Security definer: no client role may update app.reviews; it finds the review through app.review_for_update (owner only).';

create function api.review_hide(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_review app.reviews := app.review_for_update(p_id);
begin
  perform app.raise_errors(app.check_text('{}', p_body, 'reason', 1, 1000, p_required => true));
  update app.reviews r
     set hidden_at = coalesce(r.hidden_at, now()), hidden_by = app.current_user_id(),
         hidden_reason = btrim(p_body ->> 'reason')
   where r.id = v_review.id;
  return app.review_detail(v_review.id);
end
$$;
comment on function api.review_hide(text, jsonb) is
  'POST /api/reviews/{id}/hide/ {reason} — an admin hides a review: it leaves the public lists and the listing''s rating at once; its author and the host still see it, marked hidden with the reason. Hiding again updates the reason. 400 naming reason; 403 for non-admins. Security definer: no client role may update app.reviews; it finds the review through app.review_for_update (owner only).';

create function api.review_unhide(p_id text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_review app.reviews := app.review_for_update(p_id);
begin
  update app.reviews r set hidden_at = null, hidden_by = null, hidden_reason = null where r.id = v_review.id;
  return app.review_detail(v_review.id);
end
$$;
comment on function api.review_unhide(text) is
  'POST /api/reviews/{id}/unhide/ — an admin makes a hidden review visible again; it counts in the listing''s rating at once. 403 for non-admins. Security definer: no client role may update app.reviews; it finds the review through app.review_for_update (owner only).';

-- ---------------------------------------------------------------------------------
-- Reading
-- ---------------------------------------------------------------------------------

create function api.product_reviews(p_id text, p_ordering text default null, p_page text default null,
                                    p_page_size text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_product uuid := app.parse_uuid(p_id);
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_ordering text := coalesce(p_ordering, '-created_at');
  v_count bigint;
  v_results json;
begin
  if not (v_ordering = any (array['-created_at', 'created_at', '-rating', 'rating'])) then
    perform app.invalid('ordering', 'Must be one of -created_at, created_at, -rating, rating.');
  end if;
  if not exists (select from app.products p where p.id = v_product) then  -- under RLS: published, or yours
    perform app.fail(404, 'Not found.');
  end if;
  select coalesce(max(x.total), 0), coalesce(json_agg(x.review order by x.n), '[]')
    into v_count, v_results
    from (select app.review_json(r.r, pr.first_name, pr.photo_url) as review, r.total, r.n
            from (select r, count(*) over () as total,
                         row_number() over (order by case v_ordering when 'rating' then r.rating end,
                                                     case v_ordering when '-rating' then r.rating end desc,
                                                     case v_ordering when 'created_at' then r.created_at end,
                                                     r.created_at desc, r.id) as n
                    from app.reviews r
                   where r.product_id = v_product and r.hidden_at is null
                   order by n
                   limit v_window.page_size offset v_window.skip) r
            left join app.reviewer_profiles(array[(r.r).guest_id]) pr on true) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.product_reviews(text, text, text, text) is
  'GET /api/products/{id}/reviews/ — the visible reviews of a listing anyone can see, each with the reviewer''s public profile and the host''s response. ordering: -created_at (default), created_at, -rating, rating (ties newest first). Paginated. 404 for an unknown or unpublished listing. Anyone.';

create function api.review_list(p_as text default null, p_hidden text default null, p_page text default null,
                                 p_page_size text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_uid uuid := app.current_user_id();
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_hidden boolean;
  v_count bigint;
  v_results json;
begin
  if p_as is not null and not (p_as = any (array['guest', 'host'])) then
    perform app.invalid('as', 'Must be guest (reviews you wrote) or host (reviews of your listings).');
  end if;
  if p_hidden is not null and not (p_hidden = any (array['true', 'false'])) then
    perform app.invalid('hidden', 'Must be true or false.');
  end if;
  v_hidden := p_hidden::boolean;
  select coalesce(max(x.total), 0), coalesce(json_agg(x.review order by x.n), '[]')
    into v_count, v_results
    from (select app.review_json(r.r, pr.first_name, pr.photo_url) as review, r.total, r.n
            from (select r, count(*) over () as total, row_number() over (order by r.created_at desc, r.id) as n
                    from app.reviews r
                   -- why: which rows an admin lists by default (all): no grant can say it.
                   where case coalesce(p_as, case when app.is_admin() then 'all' else 'guest' end)
                           when 'guest' then r.guest_id = v_uid
                           when 'host' then r.host_id = v_uid
                           else true end
                     and (v_hidden is null or (r.hidden_at is not null) = v_hidden)
                   order by n
                   limit v_window.page_size offset v_window.skip) r
            left join app.reviewer_profiles(array[(r.r).guest_id]) pr on true) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.review_list(text, text, text, text) is
  'GET /api/reviews/ — your reviews, newest first, hidden ones included and marked: as=guest (default: the ones you wrote) or as=host (the ones of your listings). Admins without as see every review (moderation). Filter hidden=true|false. Paginated. Signed in.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('Review', 'A guest''s review of a stay (app.review_json), with the host''s response; hidden_at and hidden_reason only on a hidden one.', '{
  "id": "uuid", "product_id": "uuid", "booking_id": "uuid", "rating": "integer(1..5)", "comment": "string",
  "reviewer": "PublicUser", "response": {"anyOf": [{"body": "string", "host_id": "uuid", "responded_at": "date-time"}, {"type": "null"}]},
  "hidden": "boolean", "created_at": "date-time", "updated_at": "date-time",
  "hidden_at?": "date-time", "hidden_reason?": "string?"}');
select app.api_operation('api.review_create', response => '"Review"', errors => '{409}',
  body => '{"rating": "integer(1..5)", "comment": "string(1..5000)"}', example => '{"rating": 5, "comment": "Spotless, and the host was lovely."}');
select app.api_operation('api.review_update', response => '"Review"', errors => '{409}',
  body => '{"rating?": "integer(1..5)", "comment?": "string(1..5000)"}');
select app.api_operation('api.review_respond', response => '"Review"', errors => '{409}', body => '{"body": "string(1..5000)"}');
select app.api_operation('api.review_hide', response => '"Review"', errors => '{409}', body => '{"reason": "string(1..1000)"}');
select app.api_operation('api.review_unhide', response => '"Review"', errors => '{409}');
select app.api_operation('api.product_reviews', response => '"Review"',
  parameters => '{"ordering": "-created_at|created_at|-rating|rating"}');
select app.api_operation('api.review_list', response => '"Review"',
  parameters => '{"as": "guest|host", "hidden": {"type": "string", "enum": ["true", "false"]}}');
