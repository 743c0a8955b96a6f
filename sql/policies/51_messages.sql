/*
 * Messages: who may read conversations, messages and reports, and call the message functions.
 *
 * Only the two parties of a conversation read it and its messages. Admins read a message
 * and its conversation only once the message was reported (select_reported_as_admin), and
 * the reports themselves; they never read the rest of a conversation. Every write goes
 * through the SECURITY DEFINER functions in sql/functions/51_messages.sql, so no client
 * role holds insert, update or delete on these tables: a direct write is 42501, and
 * messages stay immutable (the trigger app.tg_messages__guard binds the owner as well).
 */

-- app.conversations: the parties; admins the conversations of reported messages.
grant select on app.conversations to guest, host, admin;
create policy select_as_party on app.conversations for select to guest, host, admin
  using (guest_id = (select app.current_user_id()) or host_id = (select app.current_user_id()));
create policy select_reported_as_admin on app.conversations for select to admin
  using (exists (select from app.message_reports r where r.conversation_id = conversations.id));

-- app.messages: the sender and the recipient; admins the reported messages, nothing else.
grant select on app.messages to guest, host, admin;
create policy select_as_party on app.messages for select to guest, host, admin
  using (sender_id = (select app.current_user_id()) or recipient_id = (select app.current_user_id()));
create policy select_reported_as_admin on app.messages for select to admin
  using (exists (select from app.message_reports r where r.message_id = messages.id));

-- app.message_reports: the moderation queue, for admins (a reporter is told once, at 201).
grant select on app.message_reports to admin;
create policy select_as_admin on app.message_reports for select to admin using (true);

-- Helpers the invoker functions need:
grant execute on function app.message_json(app.messages), app.conversation_json(uuid),
  app.check_message_body(jsonb, jsonb, text)
  to guest, host, admin;

-- The endpoints (api/routes.py, "messages" block):
grant execute on function api.conversation_list(text, text), api.conversation_unread(),
  api.conversation_start(jsonb), api.message_list(text, text, text), api.message_send(text, jsonb),
  api.conversation_read(text), api.message_report(text, jsonb)
  to guest, host, admin;
grant execute on function api.message_report_list(text, text) to admin;
-- app.conversation_for_party(text) runs only inside the SECURITY DEFINER writes (as the owner);
-- app_private.message_config, message_throttle and message_post stay with the owner.

-- Analysts: message volume by month (sql/views/83_messages.sql).
grant select on analytics.messages_monthly to analyst;
