/*
 * Analytics: message volume by month. Counts only: no text, no user ids, no reasons.
 *
 * Like the other analytics views it runs with the owner's rights and exposes only what the
 * analysis needs; the analyst's grant is in sql/policies/51_messages.sql.
 */

create view analytics.messages_monthly as
with sent as (
  select date_trunc('month', m.sent_at at time zone 'UTC')::date as month,
         count(*) as messages,
         count(*) filter (where m.sender_id = c.guest_id) as from_guests,
         count(*) filter (where m.sender_id = c.host_id) as from_hosts,
         count(*) filter (where m.read_at is not null) as read,
         count(distinct m.conversation_id) as active_conversations
    from app.messages m
    join app.conversations c on c.id = m.conversation_id
   group by 1
), opened as (
  select date_trunc('month', c.created_at at time zone 'UTC')::date as month, count(*) as new_conversations
    from app.conversations c
   group by 1
), reported as (
  select date_trunc('month', r.created_at at time zone 'UTC')::date as month, count(*) as reported_messages
    from app.message_reports r
   group by 1
)
select month,
       coalesce(s.messages, 0) as messages,
       coalesce(s.from_guests, 0) as from_guests,
       coalesce(s.from_hosts, 0) as from_hosts,
       coalesce(s.read, 0) as read,
       coalesce(s.active_conversations, 0) as active_conversations,
       coalesce(o.new_conversations, 0) as new_conversations,
       coalesce(r.reported_messages, 0) as reported_messages
from sent s
full join opened o using (month)
full join reported r using (month);
comment on view analytics.messages_monthly is
  'Message volume per calendar month (UTC): messages sent (by guests, by hosts), how many of them were read, conversations active and newly opened, messages reported. Counts only: no text and no user identity.';
comment on column analytics.messages_monthly.month is 'First day of the month (UTC).';
comment on column analytics.messages_monthly.messages is 'Messages sent in the month.';
comment on column analytics.messages_monthly.from_guests is 'Of those, sent by the conversation''s guest.';
comment on column analytics.messages_monthly.from_hosts is 'Of those, sent by the listing''s host.';
comment on column analytics.messages_monthly.read is 'Of those, read by their recipient so far.';
comment on column analytics.messages_monthly.active_conversations is 'Conversations with at least one message sent in the month.';
comment on column analytics.messages_monthly.new_conversations is 'Conversations opened in the month.';
comment on column analytics.messages_monthly.reported_messages is 'Messages reported in the month (by report date).';
