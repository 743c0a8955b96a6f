/*
 * Input: one vocabulary for reading what a client sends and for saying what is wrong with it.
 *
 * Why: every domain reads ids, numbers, dates and text from clients. Each kind of value is
 * defined once here (what is acceptable, and the message when it is not), so a price, a
 * date or a page number means the same thing in every endpoint.
 *
 * Two shapes of input, two ways to answer:
 *   - Query and path parameters (text): app.parse_uuid / parse_int / parse_price / parse_date
 *     return the typed value or raise one 400 naming the parameter (app.invalid).
 *   - JSON bodies of writes: EVERY invalid field is reported at once. A write collects
 *     messages into an errors object ({"field": ["message", ...]}) with app.check_text,
 *     check_number, check_boolean, check_choice, check_date, check_uuid (and app.add_error
 *     for its own rules), raises them once with app.raise_errors, and only then reads the
 *     values with plain casts, which can no longer fail:
 *
 *       v_errors := app.check_text('{}', p_body, 'name', 1, 100, p_required => true);
 *       v_errors := app.check_date(v_errors, p_body, 'start_date', p_required => true);
 *       perform app.raise_errors(v_errors);
 *       v_name := btrim(p_body ->> 'name');
 *
 * A well-formed value that names what does not exist, or what the caller may not see (a
 * listing, a booking, a category, an amenity, a currency), is a 404 naming the field, as an
 * unknown id in a path is: app.fail(404, ..., 'field'), or app.raise_errors(v_missing, 404)
 * once the rest of the body is valid. Each operation's contract lists 404 among its errors.
 *
 * The *_problem functions say why a text value is unacceptable, or return null: both shapes
 * use them, so a query parameter and a body field of one kind agree.
 * A body field that is absent is fine unless p_required; JSON null is refused unless p_nullable.
 *
 * Guarantees: these functions read nothing but their arguments (immutable), except the
 * ones that raise (stable, so a raising call is never folded into a plan).
 */

-- ---------------------------------------------------------------------------------
-- What is wrong with a value (null: nothing)
-- ---------------------------------------------------------------------------------

create function app.number_problem(p_text text, p_min numeric, p_max numeric, p_scale int default 0)
returns text
language sql immutable parallel safe security invoker
as $$
  select case
    when btrim(p_text) !~ ('^[+-]?[0-9]{1,12}' || case when p_scale > 0 then '(\.[0-9]{1,' || p_scale || '})?' else '' end || '$')
      then case when p_scale = 0 then 'Must be a whole number.'
                else format('Must be a number with at most %s decimals, e.g. 120.00.', p_scale) end
    when btrim(p_text)::numeric not between p_min and p_max
      then format('Must be between %s and %s.', p_min, p_max)
  end
$$;
comment on function app.number_problem(text, numeric, numeric, int) is
  'Why a number given as text is unacceptable, or null: digits with at most p_scale decimals (0: a whole number), between p_min and p_max.';

create function app.date_problem(p_text text) returns text
language plpgsql immutable parallel safe security invoker
as $$
begin
  if p_text is null then
    return null;
  end if;
  if btrim(p_text) ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' then
    perform btrim(p_text)::date;
    return null;
  end if;
  return 'Must be a date as YYYY-MM-DD.';
exception when datetime_field_overflow or invalid_datetime_format then
  return 'Must be a date as YYYY-MM-DD.';
end
$$;
comment on function app.date_problem(text) is 'Why a date given as text is unacceptable (not a real YYYY-MM-DD date), or null.';

create function app.uuid_problem(p_text text) returns text
language sql immutable parallel safe security invoker
as $$
  select case when p_text !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'
              then 'Must be a valid UUID.' end
$$;
comment on function app.uuid_problem(text) is 'Why an id given as text is not a UUID, or null.';

-- ---------------------------------------------------------------------------------
-- Query and path parameters: the value, or one 400 naming the parameter
-- ---------------------------------------------------------------------------------

create function app.parse_uuid(p_value text, p_field text default 'id', p_status int default 404)
returns uuid
language plpgsql stable security invoker
as $$
begin
  if app.uuid_problem(p_value) is not null then
    if p_status = 404 then
      perform app.fail(404, 'Not found.');  -- a malformed path id: that object cannot exist
    end if;
    perform app.fail(p_status, app.uuid_problem(p_value), p_field);
  end if;
  return p_value::uuid;
end
$$;
comment on function app.parse_uuid(text, text, int) is
  'Parse a UUID from client input; a malformed value is a 404 for path ids (the object cannot exist) or a 400 naming the field. Null stays null.';

create function app.parse_int(p_value text, p_field text, p_min int, p_max int default 1000000)
returns int
language plpgsql stable security invoker
as $$
declare
  v_problem text := app.number_problem(p_value, p_min, p_max);
begin
  if v_problem is not null then
    perform app.invalid(p_field, v_problem);
  end if;
  return btrim(p_value)::int;
end
$$;
comment on function app.parse_int(text, text, int, int) is
  'Parse a whole number from client text; outside [p_min, p_max] or not a number is a 400 naming p_field. Null stays null.';

create function app.parse_price(p_value text, p_field text) returns numeric
language plpgsql stable security invoker
as $$
declare
  v_problem text := app.number_problem(p_value, 0.01, 9999999999.99, 2);
begin
  if v_problem is not null then
    perform app.invalid(p_field, v_problem);
  end if;
  return btrim(p_value)::numeric(12, 2);
end
$$;
comment on function app.parse_price(text, text) is
  'Parse a price (positive, at most 10 integer digits and 2 decimals) from client text, or a 400 naming p_field. Null stays null.';

create function app.parse_date(p_value text, p_field text) returns date
language plpgsql stable security invoker
as $$
declare
  v_problem text := app.date_problem(p_value);
begin
  if v_problem is not null then
    perform app.invalid(p_field, v_problem);
  end if;
  return btrim(p_value)::date;
end
$$;
comment on function app.parse_date(text, text) is 'Parse a calendar date (YYYY-MM-DD) from client text, or a 400 naming p_field. Null stays null.';

-- ---------------------------------------------------------------------------------
-- JSON bodies: collect every problem, raise once
-- ---------------------------------------------------------------------------------

create function app.add_error(p_errors jsonb, p_field text, p_message text) returns jsonb
language sql immutable parallel safe security invoker
as $$
  select case when p_message is null then p_errors
              else p_errors || jsonb_build_object(p_field, coalesce(p_errors -> p_field, '[]'::jsonb) || to_jsonb(p_message))
         end
$$;
comment on function app.add_error(jsonb, text, text) is
  'Add a message for a field to an errors object {"field": ["message", ...]} (for app.raise_errors); a null message adds nothing.';

create function app.raise_errors(p_errors jsonb, p_status int default 400) returns void
language plpgsql stable security invoker
as $$
declare
  v_first text := (select k from jsonb_object_keys(p_errors) k limit 1);
begin
  if v_first is not null then
    raise exception using
      errcode = 'PT' || p_status::text,
      message = case when (select count(*) from jsonb_each(p_errors)) = 1 and jsonb_array_length(p_errors -> v_first) = 1
                     then p_errors -> v_first ->> 0 else 'Some fields are invalid.' end,
      detail = p_errors::text,
      column = v_first;
  end if;
end
$$;
comment on function app.raise_errors(jsonb, int) is
  'Raise one 400 listing every invalid field at once: p_errors is {"field": ["message", ...]} (the problem''s errors; its detail is the message when there is one, else "Some fields are invalid."). Does nothing when empty. p_status 404: the fields are well formed but name what does not exist (a listing, a category, a currency), raised once the body is otherwise valid.';

create function app.body_problem(p_value jsonb, p_required boolean, p_nullable boolean) returns text
language sql immutable parallel safe security invoker
as $$
  select case
    when p_value is null then case when p_required then 'This field is required.' end
    when not p_nullable then 'This field may not be null.'
  end
$$;
comment on function app.body_problem(jsonb, boolean, boolean) is
  'The problem with a body field that has no value (p_value is the field, absent = SQL null, or JSON null): required, or may not be null; null when that is acceptable. Used by the app.check_* functions.';

create function app.check_text(p_errors jsonb, p_body jsonb, p_field text, p_min int, p_max int,
                               p_required boolean default false, p_nullable boolean default false)
returns jsonb
language sql immutable parallel safe security invoker
as $$
  select app.add_error(p_errors, p_field, case
    when v is null or jsonb_typeof(v) = 'null' then app.body_problem(v, p_required, p_nullable)
    when jsonb_typeof(v) <> 'string' then 'Must be text.'
    -- Blank is blank whatever the whitespace: spaces, tabs, line breaks.
    when length(btrim(v #>> '{}', E' \t\r\n\f\v')) < p_min then
      case when p_min = 1 then 'This field may not be blank.' else format('At least %s characters.', p_min) end
    when length(btrim(v #>> '{}')) > p_max then format('At most %s characters.', p_max)
  end)
  from (select p_body -> p_field) f(v)
$$;
comment on function app.check_text(jsonb, jsonb, text, int, int, boolean, boolean) is
  'Check a text field of a JSON body: a string of p_min to p_max characters once trimmed (whitespace of any kind counts as blank; read it as btrim(body ->> field)). Returns p_errors with the field''s message added when it is unacceptable.';

create function app.check_number(p_errors jsonb, p_body jsonb, p_field text, p_min numeric, p_max numeric,
                                 p_scale int default 0, p_required boolean default false)
returns jsonb
language sql immutable parallel safe security invoker
as $$
  select app.add_error(p_errors, p_field, case
    when v is null or jsonb_typeof(v) = 'null' then app.body_problem(v, p_required, false)
    when jsonb_typeof(v) not in ('number', 'string') then 'Must be a number.'
    else app.number_problem(v #>> '{}', p_min, p_max, p_scale)
  end)
  from (select p_body -> p_field) f(v)
$$;
comment on function app.check_number(jsonb, jsonb, text, numeric, numeric, int, boolean) is
  'Check a number field of a JSON body: a JSON number or a numeric string (exact decimals survive as strings), at most p_scale decimals, between p_min and p_max (read it as (body ->> field)::numeric). Returns p_errors with the field''s message added when it is unacceptable.';

create function app.check_boolean(p_errors jsonb, p_body jsonb, p_field text, p_required boolean default false)
returns jsonb
language sql immutable parallel safe security invoker
as $$
  select app.add_error(p_errors, p_field, case
    when v is null or jsonb_typeof(v) = 'null' then app.body_problem(v, p_required, false)
    when jsonb_typeof(v) <> 'boolean' then 'Must be true or false.'
  end)
  from (select p_body -> p_field) f(v)
$$;
comment on function app.check_boolean(jsonb, jsonb, text, boolean) is
  'Check a true/false field of a JSON body. Returns p_errors with the field''s message added when it is unacceptable.';

create function app.check_choice(p_errors jsonb, p_body jsonb, p_field text, p_choices text[],
                                 p_required boolean default false)
returns jsonb
language sql immutable parallel safe security invoker
as $$
  select app.add_error(p_errors, p_field, case
    when v is null or jsonb_typeof(v) = 'null' then app.body_problem(v, p_required, false)
    when jsonb_typeof(v) <> 'string' or not ((v #>> '{}') = any (p_choices))
      then 'Must be one of ' || array_to_string(p_choices, ', ') || '.'
  end)
  from (select p_body -> p_field) f(v)
$$;
comment on function app.check_choice(jsonb, jsonb, text, text[], boolean) is
  'Check a field of a JSON body that must be one of p_choices (exactly, e.g. an enum label). Returns p_errors with the field''s message added when it is unacceptable.';

create function app.check_date(p_errors jsonb, p_body jsonb, p_field text, p_required boolean default false)
returns jsonb
language sql immutable parallel safe security invoker
as $$
  select app.add_error(p_errors, p_field, case
    when v is null or jsonb_typeof(v) = 'null' then app.body_problem(v, p_required, false)
    when jsonb_typeof(v) <> 'string' then 'Must be a date as YYYY-MM-DD.'
    else app.date_problem(v #>> '{}')
  end)
  from (select p_body -> p_field) f(v)
$$;
comment on function app.check_date(jsonb, jsonb, text, boolean) is
  'Check a date field (YYYY-MM-DD) of a JSON body (read it as (body ->> field)::date). Returns p_errors with the field''s message added when it is unacceptable.';

create function app.check_uuid(p_errors jsonb, p_body jsonb, p_field text, p_required boolean default false)
returns jsonb
language sql immutable parallel safe security invoker
as $$
  select app.add_error(p_errors, p_field, case
    when v is null or jsonb_typeof(v) = 'null' then app.body_problem(v, p_required, false)
    when jsonb_typeof(v) <> 'string' then 'Must be a valid UUID.'
    else app.uuid_problem(v #>> '{}')
  end)
  from (select p_body -> p_field) f(v)
$$;
comment on function app.check_uuid(jsonb, jsonb, text, boolean) is
  'Check an id field (a UUID string) of a JSON body (read it as (body ->> field)::uuid). Returns p_errors with the field''s message added when it is unacceptable.';

create function app.check_stay(p_errors jsonb, p_start date, p_end date, p_max_nights int default null,
                               p_from_today boolean default true, p_max_advance_days int default null,
                               p_start_field text default 'start_date', p_end_field text default 'end_date')
returns jsonb
language plpgsql stable security invoker
as $$
declare
  v_today date := (now() at time zone 'UTC')::date;
begin
  if p_start is null or p_end is null then
    return p_errors;  -- the caller reports a missing date
  end if;
  if p_from_today and p_start < v_today then
    p_errors := app.add_error(p_errors, p_start_field, 'Must be today or later.');
  end if;
  if p_start > v_today + p_max_advance_days then
    p_errors := app.add_error(p_errors, p_start_field, format('Must be at most %s days from today.', p_max_advance_days));
  end if;
  if p_end <= p_start then
    p_errors := app.add_error(p_errors, p_end_field, format('Must be after %s.', p_start_field));
  elsif p_end - p_start > p_max_nights then
    p_errors := app.add_error(p_errors, p_end_field, format('At most %s nights after %s.', p_max_nights, p_start_field));
  end if;
  return p_errors;
end
$$;
comment on function app.check_stay(jsonb, date, date, int, boolean, int, text, text) is
  'Check a range of days [p_start, p_end) (a stay, a block, a search or a window): the end after the start, at most p_max_nights long, the start today (UTC) or later when p_from_today, and at most p_max_advance_days ahead. Messages name p_start_field / p_end_field. Returns p_errors with what is wrong added; nothing when a date is null.';

create function app.slugify(p_text text) returns text
language sql immutable strict parallel safe security invoker
as $$
  select left(btrim(regexp_replace(lower(p_text), '[^a-z0-9]+', '-', 'g'), '-'), 100)
$$;
comment on function app.slugify(text) is
  'A URL slug from a name: lowercase ASCII letters and digits, other runs become single hyphens ("Beach Houses!" -> "beach-houses").';
