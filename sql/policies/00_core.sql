/*
 * Core: who may call the helpers every domain uses.
 *
 * The helpers in sql/functions/00_core.sql, 01_input.sql and 02_pages.sql are called by
 * SECURITY INVOKER api functions, so every client role that calls those needs EXECUTE on
 * them. None of them reads or writes a table a client could not reach otherwise
 * (app.check_session and app.check_media_path are SECURITY DEFINER and only answer yes/no).
 */

grant execute on function
  -- who is calling, how a function refuses, media
  app.current_claims(), app.current_user_id(), app.is_admin(), app.fail(int, text, text, int),
  app.invalid(text, text), app.check_media_path(text), app.media_url(text),
  app.photo_json(text, int, int, int, text, jsonb), app.avatar_url(text, jsonb),
  -- input (01_input.sql)
  app.number_problem(text, numeric, numeric, int), app.date_problem(text), app.uuid_problem(text),
  app.parse_uuid(text, text, int), app.parse_int(text, text, int, int), app.parse_price(text, text),
  app.parse_date(text, text), app.add_error(jsonb, text, text), app.raise_errors(jsonb, int),
  app.body_problem(jsonb, boolean, boolean), app.check_text(jsonb, jsonb, text, int, int, boolean, boolean),
  app.check_number(jsonb, jsonb, text, numeric, numeric, int, boolean), app.check_boolean(jsonb, jsonb, text, boolean),
  app.check_choice(jsonb, jsonb, text, text[], boolean), app.check_date(jsonb, jsonb, text, boolean),
  app.check_uuid(jsonb, jsonb, text, boolean), app.check_stay(jsonb, date, date, int, boolean, int, text, text),
  app.slugify(text),
  -- pages (02_pages.sql)
  app.page_window(text, text), app.page(app.page_window, bigint, json, text, boolean),
  -- readiness (GET /readyz)
  api.health()
  to anon, guest, host, admin;

-- Run by the API before every signed-in call; anonymous requests have no session to check.
grant execute on function app.check_session() to guest, host, admin;
-- Fired by updates, which only signed-in roles make.
grant execute on function app.tg__set_updated_at() to guest, host, admin;
