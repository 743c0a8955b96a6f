/*
 * Messages: conversations between a guest and a host about a listing, reading them,
 * reporting a message, and the sender's rate limit.
 *
 * Who talks to whom (nobody else, and never oneself):
 *   - a guest opens a conversation with a listing's host about a published listing (an
 *     inquiry, before booking: {product_id}) or about one of their bookings ({booking_id});
 *   - a host writes to a guest who booked one of their listings ({booking_id}: the booking
 *     names the guest) or who inquired (in the conversation the guest opened);
 *   - one conversation per (listing, guest): opening it again appends to the existing one.
 *
 * Guarantees (on top of the constraints in sql/schema/0009_messages.sql):
 *   - only the two parties read a conversation and its messages (RLS, sql/policies/51_messages.sql);
 *     admins read a message and its conversation only once the recipient reported it, and
 *     nothing else of the conversation;
 *   - a message is immutable once sent: app.tg_messages__guard lets only read_at change, once
 *     (even for the owner); the parties of a conversation never change;
 *   - read_at is set by the recipient only (POST /api/conversations/{id}/read/);
 *   - a sender sends at most message_settings.max_messages in window_seconds (default 30 a
 *     minute), serialised per sender by a lock on the sender's row; past it: 429 with Retry-After
 *     (app.fail's p_retry_after), the seconds until the window lets one more through.
 *
 * Access: reads are SECURITY INVOKER under RLS, plus one SECURITY DEFINER helper
 * (app.conversation_json) that adds the other party's public profile and the listing's name,
 * and answers only to a party. Writes are SECURITY DEFINER functions that check the caller
 * explicitly; no client role may write these tables directly.
 *
 * Unread counts: per conversation in each conversation's JSON (unread_count), in total from
 * GET /api/conversations/unread/ and in the answer of POST /api/conversations/{id}/read/.
 * GET never marks anything read (GETs run in read-only transactions); reading is that POST.
 */

-- ---------------------------------------------------------------------------------
-- Settings and the rate limit
-- ---------------------------------------------------------------------------------

create function app_private.message_config() returns app_private.message_settings
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select s from app_private.message_settings s where s.id
$$;
comment on function app_private.message_config() is
  'The message settings row (app_private.message_settings): max_messages per window_seconds per sender. Change them as the owner: update app_private.message_settings set max_messages = 60;';

create function app_private.message_throttle(p_sender uuid) returns void
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_cfg app_private.message_settings := app_private.message_config();
  v_window interval := make_interval(secs => v_cfg.window_seconds);
  v_nth timestamptz;
begin
  -- Held to the end of the transaction: a sender's concurrent messages are counted one after the other.
  perform app_private.lock_user(p_sender);
  -- The max_messages-th most recent message inside the window: while it exists, the sender is
  -- at the limit, and one more may be sent once it leaves the window.
  select m.sent_at into v_nth
    from app.messages m
   where m.sender_id = p_sender and m.sent_at > now() - v_window
   order by m.sent_at desc
  offset v_cfg.max_messages - 1 limit 1;
  if found then
    perform app.fail(429,
      format('You can send at most %s messages in %s seconds; try again shortly.', v_cfg.max_messages, v_cfg.window_seconds),
      null, ceil(extract(epoch from v_nth + v_window - now()))::int);
  end if;
end
$$;
comment on function app_private.message_throttle(uuid) is
  'Refuse a sender who already sent message_settings.max_messages within window_seconds: 429 with Retry-After = the seconds until the oldest of those leaves the window (at least 1). Serialised per sender by a lock on the sender''s row held to the end of the transaction (app_private.lock_user), so concurrent sends cannot overshoot.';

-- ---------------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------------

create function app.tg_messages__guard() returns trigger
language plpgsql security invoker
as $$
begin
  if (new.id, new.conversation_id, new.sender_id, new.recipient_id, new.body, new.sent_at)
     is distinct from (old.id, old.conversation_id, old.sender_id, old.recipient_id, old.body, old.sent_at)
     or (old.read_at is not null and new.read_at is distinct from old.read_at) then
    perform app.fail(409, 'A message never changes once sent; only the recipient reading it is recorded.');
  end if;
  return new;
end
$$;
comment on function app.tg_messages__guard() is
  'Trigger: a message is immutable; the only change ever allowed is setting read_at once (the recipient read it). 409 otherwise, for the owner too.';

create trigger messages_guard before update on app.messages
  for each row execute function app.tg_messages__guard();

create function app.tg_conversations__guard() returns trigger
language plpgsql security invoker
as $$
begin
  if (new.id, new.guest_id, new.host_id, new.created_at) is distinct from (old.id, old.guest_id, old.host_id, old.created_at)
     or (new.product_id is distinct from old.product_id and new.product_id is not null) then
    perform app.fail(409, 'A conversation''s parties and listing never change.');
  end if;
  return new;
end
$$;
comment on function app.tg_conversations__guard() is
  'Trigger: a conversation''s parties never change, nor its listing (except becoming null when the listing is deleted); only last_message_at moves. 409 otherwise, for the owner too.';

create trigger conversations_guard before update on app.conversations
  for each row execute function app.tg_conversations__guard();

create function app.tg_messages__touch_conversation() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  update app.conversations c
     set last_message_at = new.sent_at
   where c.id = new.conversation_id and c.last_message_at < new.sent_at;
  return null;
end
$$;
comment on function app.tg_messages__touch_conversation() is
  'Trigger: a new message moves its conversation''s last_message_at forward (lists show the newest activity first).';

create trigger messages_touch_conversation after insert on app.messages
  for each row execute function app.tg_messages__touch_conversation();

-- ---------------------------------------------------------------------------------
-- How a message and a conversation look
-- ---------------------------------------------------------------------------------

create function app.message_json(m app.messages) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', m.id,
    'conversation_id', m.conversation_id,
    'sender_id', m.sender_id,
    'recipient_id', m.recipient_id,
    'body', m.body,
    'sent_at', m.sent_at,
    'read_at', m.read_at)
$$;
comment on function app.message_json(app.messages) is
  'A message as the API returns it: id, conversation_id, sender_id, recipient_id, body (plain text), sent_at, read_at (null while unread).';

create function app.conversation_json(p_id uuid) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.jsonb_build_object(
    'id', c.id,
    'as', case when c.guest_id = me.id then 'guest' else 'host' end,
    'product', case when p.id is not null then pg_catalog.jsonb_build_object('id', p.id, 'name', p.name) end,
    'other_party', pg_catalog.jsonb_build_object('id', u.id, 'first_name', u.first_name,
                                                 'photo_url', app.avatar_url(u.photo_path, u.photo_variants)),
    'last_message', (select app.message_json(m) from app.messages m
                      where m.conversation_id = c.id order by m.sent_at desc, m.id desc limit 1),
    'unread_count', (select pg_catalog.count(*) from app.messages m
                      where m.conversation_id = c.id and m.recipient_id = me.id and m.read_at is null),
    'created_at', c.created_at,
    'last_message_at', c.last_message_at)
  from (select app.current_user_id() as id) me
  join app.conversations c on c.id = p_id and me.id in (c.guest_id, c.host_id)
  join app.users u on u.id = case when c.guest_id = me.id then c.host_id else c.guest_id end
  left join app.products p on p.id = c.product_id
$$;
comment on function app.conversation_json(uuid) is
  'A conversation as its party sees it: id, as (the caller''s side: guest or host), product {id, name} (null once the listing was deleted), other_party (the other party''s public profile: id, first_name, photo_url; never email or phone), last_message, unread_count (messages to the caller not yet read), created_at, last_message_at. Null for anyone but the two parties. Security definer: the other party''s profile and an unpublished listing''s name are otherwise out of the caller''s sight.';

create function app.check_message_body(p_errors jsonb, p_body jsonb, p_field text default 'body') returns jsonb
language sql immutable parallel safe security invoker
as $$
  select case
    when jsonb_typeof(p_body -> p_field) = 'string' and btrim(p_body ->> p_field, E' \t\r\n') = ''
      then app.add_error(p_errors, p_field, 'This field may not be blank.')
    else app.check_text(p_errors, p_body, p_field, 1, 5000, p_required => true)
  end
$$;
comment on function app.check_message_body(jsonb, jsonb, text) is
  'Check a message text in a JSON body: required, a string of 1 to 5000 characters, not only whitespace (read it as btrim(body ->> field, E'' \t\r\n'')). Returns p_errors with the field''s message added when it is unacceptable.';

-- ---------------------------------------------------------------------------------
-- Writing
-- ---------------------------------------------------------------------------------

create function app_private.message_post(p_conversation app.conversations, p_sender uuid, p_body text)
returns app.messages
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_recipient uuid := case when p_sender = p_conversation.guest_id then p_conversation.host_id
                           else p_conversation.guest_id end;
  v_message app.messages;
begin
  if not coalesce((select u.is_active from app.users u where u.id = v_recipient), false) then
    perform app.fail(409, 'This user''s account is closed; they cannot receive messages.');
  end if;
  perform app_private.message_throttle(p_sender);
  insert into app.messages (conversation_id, sender_id, recipient_id, body)
  values (p_conversation.id, p_sender, v_recipient, btrim(p_body, E' \t\r\n'))
  returning * into v_message;
  return v_message;
end
$$;
comment on function app_private.message_post(app.conversations, uuid, text) is
  'Send p_body from p_sender (a party, checked by the caller) to the other party of a conversation: 409 when the recipient''s account is closed, 429 past the sender''s rate limit. Returns the message.';

create function app.conversation_for_party(p_id text) returns app.conversations
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_conversation app.conversations;
begin
  select * into v_conversation from app.conversations c where c.id = app.parse_uuid(p_id) for update;
  if not found or v_uid is null or v_uid not in (v_conversation.guest_id, v_conversation.host_id) then
    perform app.fail(404, 'Not found.');
  end if;
  return v_conversation;
end
$$;
comment on function app.conversation_for_party(text) is
  'The conversation a path names, locked for update, when the caller is one of its two parties; a 404 for anyone else (admins included), so existence is not revealed. Runs inside the SECURITY DEFINER writes only.';

create function api.conversation_start(p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_errors jsonb := '{}';
  v_missing jsonb := '{}';
  v_ids jsonb;
  v_product app.products;
  v_booking app.bookings;
  v_guest uuid;
  v_host uuid;
  v_product_id uuid;
  v_conversation app.conversations;
  v_message app.messages;
begin
  if v_uid is null then
    perform app.fail(401, 'Authentication required.');
  end if;
  if p_body is null or jsonb_typeof(p_body) <> 'object' then
    perform app.fail(400, 'The body must be a JSON object.');
  end if;

  -- Exactly one of the two ids; a null one counts as absent.
  v_ids := jsonb_strip_nulls(jsonb_build_object('product_id', p_body -> 'product_id', 'booking_id', p_body -> 'booking_id'));
  v_errors := app.check_uuid(v_errors, v_ids, 'product_id');
  v_errors := app.check_uuid(v_errors, v_ids, 'booking_id');
  v_errors := app.check_message_body(v_errors, p_body);
  if v_ids ? 'product_id' and v_ids ? 'booking_id' then
    v_errors := app.add_error(v_errors, 'booking_id', 'Give product_id or booking_id, not both.');
  elsif v_ids = '{}' then
    v_errors := app.add_error(v_errors, 'product_id', 'Give product_id (an inquiry about a listing) or booking_id.');
  elsif not (v_errors ? 'product_id' or v_errors ? 'booking_id') then
    if v_ids ? 'product_id' then
      -- An inquiry: the caller is the guest, the listing's host the other party.
      select * into v_product from app.products p where p.id = (v_ids ->> 'product_id')::uuid;
      if found and v_product.host_id = v_uid then
        perform app.fail(403, 'You host this listing: write to a guest about their booking (booking_id) or in the conversation they opened.', 'product_id');
      end if;
      if not found or not v_product.published then
        v_missing := app.add_error(v_missing, 'product_id', 'No such listing.');
      else
        v_guest := v_uid;
        v_host := v_product.host_id;
        v_product_id := v_product.id;
      end if;
    else
      -- About a booking: its guest or its host writes to the other.
      select * into v_booking from app.bookings b where b.id = (v_ids ->> 'booking_id')::uuid;
      if not found or v_uid not in (v_booking.guest_id, v_booking.host_id) then
        v_missing := app.add_error(v_missing, 'booking_id', 'No such booking.');
      else
        v_guest := v_booking.guest_id;
        v_host := v_booking.host_id;
        v_product_id := v_booking.product_id;
      end if;
    end if;
  end if;
  perform app.raise_errors(v_errors);
  perform app.raise_errors(v_missing, 404);  -- well formed, but no such listing or booking of yours

  -- One conversation per (listing, guest): a concurrent opener waits here, then finds it.
  insert into app.conversations (product_id, guest_id, host_id)
  values (v_product_id, v_guest, v_host)
  on conflict (product_id, guest_id) do nothing
  returning * into v_conversation;
  if not found then
    select * into v_conversation from app.conversations c
     where c.product_id = v_product_id and c.guest_id = v_guest
       for update;
  end if;
  v_message := app_private.message_post(v_conversation, v_uid, p_body ->> 'body');
  return app.conversation_json(v_conversation.id) || jsonb_build_object('message', app.message_json(v_message));
end
$$;
comment on function api.conversation_start(jsonb) is
  'POST /api/conversations/ {product_id | booking_id, body} -> 201: send a first message. product_id: an inquiry by a guest to the host of a published listing. booking_id: the booking''s guest or host writes to the other (for a host, the booking names the guest). One conversation per (listing, guest): if it exists, the message is added to it. Returns the conversation (as in the list) with "message", the message sent. 400 naming the field (both or neither id, a body that is missing, blank or over 5000 characters), 404 naming the field for an unknown listing or a booking that is not yours, 403 about your own listing, 409 when the other party''s account is closed, 429 with Retry-After past the rate limit (message_settings: 30 a minute by default). Security definer: no client role may write app.conversations or app.messages; it posts through app_private.message_post.';

create function api.message_send(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_conversation app.conversations := app.conversation_for_party(p_id);
begin
  perform app.raise_errors(app.check_message_body('{}', p_body));
  return app.message_json(app_private.message_post(v_conversation, app.current_user_id(), p_body ->> 'body'));
end
$$;
comment on function api.message_send(text, jsonb) is
  'POST /api/conversations/{id}/messages/ {body} -> 201: a party sends a message (plain text, 1-5000 characters) to the other party. Returns the message. 404 for anyone but the two parties, 400 naming body, 409 when the other party''s account is closed, 429 with Retry-After past the rate limit. Security definer: no client role may write app.messages; it finds the conversation through app.conversation_for_party (owner only) and posts through app_private.message_post.';

create function api.conversation_read(p_id text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_conversation app.conversations := app.conversation_for_party(p_id);
  v_marked integer;
begin
  with marked as (
    update app.messages m
       set read_at = greatest(now(), m.sent_at)  -- a message sent by a transaction that began after ours
     where m.conversation_id = v_conversation.id and m.recipient_id = v_uid and m.read_at is null
    returning 1)
  select count(*) into v_marked from marked;
  return jsonb_build_object(
    'conversation_id', v_conversation.id,
    'marked_read', v_marked,
    'unread_count', 0,
    'unread_total', (select count(*) from app.messages m where m.recipient_id = v_uid and m.read_at is null));
end
$$;
comment on function api.conversation_read(text) is
  'POST /api/conversations/{id}/read/: the caller has read the conversation: every message to them in it not yet read gets read_at = now (their own messages are untouched). Returns {conversation_id, marked_read (how many were marked now), unread_count (0: this conversation), unread_total (unread messages to the caller in all conversations)}. 404 for anyone but the two parties. Security definer: no client role may update app.messages; it finds the conversation through app.conversation_for_party (owner only).';

create function api.message_report(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_message app.messages;
  v_report app.message_reports;
begin
  select * into v_message from app.messages m where m.id = app.parse_uuid(p_id);
  if not found or v_uid is null or v_uid not in (v_message.sender_id, v_message.recipient_id) then
    perform app.fail(404, 'Not found.');
  end if;
  if v_message.recipient_id <> v_uid then
    perform app.fail(403, 'You can only report a message you received.');
  end if;
  perform app.raise_errors(app.check_text('{}', p_body, 'reason', 1, 1000, p_required => true));
  insert into app.message_reports (message_id, conversation_id, reporter_id, reason)
  values (v_message.id, v_message.conversation_id, v_uid, btrim(p_body ->> 'reason'))
  on conflict (message_id) do nothing
  returning * into v_report;
  if not found then
    perform app.fail(409, 'You already reported this message.');
  end if;
  return jsonb_build_object('id', v_report.id, 'message_id', v_report.message_id,
                            'conversation_id', v_report.conversation_id, 'reason', v_report.reason,
                            'created_at', v_report.created_at);
end
$$;
comment on function api.message_report(text, jsonb) is
  'POST /api/messages/{id}/report/ {reason} -> 201: the recipient of a message reports it (abuse, spam, fraud). From then on admins can read that message and its conversation''s details (parties, listing), not the conversation''s other messages (GET /api/reports/messages/). Returns {id, message_id, conversation_id, reason, created_at}. 404 for anyone but the two parties, 403 for the sender, 400 naming reason (1-1000 characters), 409 when already reported. Security definer: no client role may insert into app.message_reports.';

-- ---------------------------------------------------------------------------------
-- Reading
-- ---------------------------------------------------------------------------------

create function api.conversation_list(p_page text default null, p_page_size text default null) returns app.page
language plpgsql stable security invoker
as $$
declare
  v_uid uuid := app.current_user_id();
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  select coalesce(max(x.total), 0),
         coalesce(json_agg(app.conversation_json(x.id) order by x.last_message_at desc, x.id), '[]')
    into v_count, v_results
    from (select c.id, c.last_message_at, count(*) over () as total
            from app.conversations c
           where c.guest_id = v_uid or c.host_id = v_uid
           order by c.last_message_at desc, c.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.conversation_list(text, text) is
  'GET /api/conversations/: the caller''s conversations (as guest and as host), newest activity first, each with the other party''s public profile, the listing''s id and name, the last message and unread_count (see app.conversation_json). Admins see only their own here (reported messages: GET /api/reports/messages/). Paginated: page (from 1), page_size (1-100, default 20); a page past the end is 404.';

create function api.conversation_unread() returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object('unread_messages', count(*), 'unread_conversations', count(distinct m.conversation_id))
    from app.messages m
   where m.recipient_id = app.current_user_id() and m.read_at is null
$$;
comment on function api.conversation_unread() is
  'GET /api/conversations/unread/: {unread_messages, unread_conversations}: how many messages to the caller are unread, in how many conversations (e.g. a badge). Per conversation: unread_count in GET /api/conversations/.';

create function api.message_list(p_id text, p_before text default null, p_page_size text default null) returns jsonb
language plpgsql stable security invoker
as $$
declare
  v_uid uuid := app.current_user_id();
  v_id uuid := app.parse_uuid(p_id);
  v_before uuid := app.parse_uuid(p_before, 'before', 400);
  v_size integer := (app.page_window(null, p_page_size)).page_size;
  v_cursor app.messages;
  v_rows jsonb[];
begin
  if not exists (select from app.conversations c where c.id = v_id and v_uid in (c.guest_id, c.host_id)) then
    perform app.fail(404, 'Not found.');
  end if;
  if v_before is not null then
    select * into v_cursor from app.messages m where m.id = v_before and m.conversation_id = v_id;
    if not found then
      perform app.fail(404, 'No such message in this conversation.', 'before');
    end if;
  end if;
  -- One more than the page: whether there is an older page.
  select coalesce(array_agg(app.message_json(x.m) order by (x.m).sent_at desc, (x.m).id desc), '{}')
    into v_rows
    from (select m from app.messages m
           where m.conversation_id = v_id
             and (v_before is null or (m.sent_at, m.id) < (v_cursor.sent_at, v_cursor.id))
           order by m.sent_at desc, m.id desc
           limit v_size + 1) x;
  return jsonb_build_object(
    'conversation', app.conversation_json(v_id),
    'results', to_jsonb(v_rows[1:v_size]),
    'next_before', case when cardinality(v_rows) > v_size then v_rows[v_size] ->> 'id' end);
end
$$;
comment on function api.message_list(text, text, text) is
  'GET /api/conversations/{id}/messages/?before=&page_size=: a conversation''s messages, newest first, by keyset: {conversation (as in the list), results (at most page_size messages), next_before}. next_before is the id of the oldest message returned when older ones exist (null at the beginning of the conversation): pass it as ?before= for the next, older page; new messages never shift a page. page_size 1-100 (default 20; above 100 is capped at 100). Reading does not mark messages read (POST /api/conversations/{id}/read/ does). 404 for anyone but the two parties; 400 naming before when it is not an id, 404 naming it when it is not a message of this conversation, page_size when not a whole number from 1.';

create function api.message_report_list(p_page text default null, p_page_size text default null) returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  -- Row-level security shows admins exactly the reported messages and their conversations.
  select coalesce(max(x.total), 0),
         coalesce(json_agg(jsonb_build_object(
           'id', (x.r).id,
           'reason', (x.r).reason,
           'created_at', (x.r).created_at,
           'reporter_id', (x.r).reporter_id,
           'message', app.message_json(x.m),
           'conversation', jsonb_build_object(
             'id', (x.c).id,
             'product', case when (x.c).product_id is not null
                             then jsonb_build_object('id', (x.c).product_id, 'name', x.product_name) end,
             'guest', jsonb_build_object('id', (x.c).guest_id, 'first_name', x.guest_first_name),
             'host', jsonb_build_object('id', (x.c).host_id, 'first_name', x.host_first_name),
             'created_at', (x.c).created_at))
           order by (x.r).created_at desc, (x.r).id), '[]')
    into v_count, v_results
    from (select r, m, c, p.name as product_name, g.first_name as guest_first_name, h.first_name as host_first_name,
                 count(*) over () as total
            from app.message_reports r
            join app.messages m on m.id = r.message_id
            join app.conversations c on c.id = r.conversation_id
            left join app.products p on p.id = c.product_id
            left join app.users g on g.id = c.guest_id
            left join app.users h on h.id = c.host_id
           order by r.created_at desc, r.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.message_report_list(text, text) is
  'GET /api/reports/messages/: reported messages for moderation, newest report first: {id, reason, created_at, reporter_id, message (as the parties see it), conversation {id, product {id, name}, guest {id, first_name}, host {id, first_name}, created_at}}. Only the reported messages are readable, never the rest of their conversations. Paginated: page, page_size (1-100, default 20). Admins.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('Message', 'One message of a conversation (app.message_json); read_at is when its recipient read it.', '{
  "id": "uuid", "conversation_id": "uuid", "sender_id": "uuid", "recipient_id": "uuid", "body": "string",
  "sent_at": "date-time", "read_at": "date-time?"}');
select app.api_schema('Conversation', 'A conversation as one of its two parties sees it (app.conversation_json).', '{
  "id": "uuid", "as": "guest|host", "product": {"anyOf": [{"id": "uuid", "name": "string"}, {"type": "null"}]},
  "other_party": "PublicUser", "last_message": {"anyOf": [{"$ref": "#/components/schemas/Message"}, {"type": "null"}]},
  "unread_count": "integer", "created_at": "date-time", "last_message_at": "date-time?"}');
select app.api_schema('MessageReport', 'A reported message, as admins see it: the message and who the conversation is between.', '{
  "id": "uuid", "reason": "string", "created_at": "date-time", "reporter_id": "uuid", "message": "Message",
  "conversation": {"id": "uuid", "product": {"anyOf": [{"id": "uuid", "name": "string"}, {"type": "null"}]},
                   "guest": {"id": "uuid", "first_name": "string"}, "host": {"id": "uuid", "first_name": "string"},
                   "created_at": "date-time"}}');
select app.api_operation('api.conversation_start', rate => 'message', errors => '{404, 409}',
  response => '{"...": "Conversation", "message": "Message"}',
  body => '{"product_id?": "uuid?", "booking_id?": "uuid?", "body": "string(1..5000)",
            "oneOf": [{"required": ["product_id"], "properties": {"product_id": {"type": "string"}}},
                      {"required": ["booking_id"], "properties": {"booking_id": {"type": "string"}}}]}',
  example => '{"product_id": "5f0c7a52-1a43-4f0e-9a55-2d9b1b7f7e01", "body": "Is the flat quiet at night?"}');
select app.api_operation('api.message_send', rate => 'message', response => '"Message"', errors => '{409}', body => '{"body": "string(1..5000)"}');
select app.api_operation('api.conversation_read', rate => 'message', response => '{
  "conversation_id": "uuid", "marked_read": "integer", "unread_count": "integer", "unread_total": "integer"}');
select app.api_operation('api.message_report', rate => 'message', errors => '{409}', body => '{"reason": "string(1..1000)"}',
  response => '{"id": "uuid", "message_id": "uuid", "conversation_id": "uuid", "reason": "string", "created_at": "date-time"}');
select app.api_operation('api.conversation_list', response => '"Conversation"');
select app.api_operation('api.conversation_unread', response => '{"unread_messages": "integer", "unread_conversations": "integer"}');
select app.api_operation('api.message_list', parameters => '{"before": "uuid", "page_size": "integer(1..1000000)"}',
  response => '{"conversation": "Conversation", "results": "[Message]", "next_before": "uuid?"}');
select app.api_operation('api.message_report_list', response => '"MessageReport"');
