/*
 * 0009 messages: conversations between a guest and a host about a listing, their
 * messages, reports of messages, and the sender's rate limit.
 *
 * Why: the seed's Message (id, sender, recipient, message_body, sent_at), made so nobody but
 * the two people talking can read it. A conversation is about one listing and is between
 * that listing's host and one guest (an inquiry before booking, or about a booking); its
 * messages are plain text and never change once sent. A party who receives an abusive
 * message reports it, and only then may admins read that message and its conversation.
 *
 * Guarantees after this file:
 *   - one conversation per (listing, guest), between two different users; its parties never
 *     change (a trigger in sql/functions/51_messages.sql); if the listing is deleted the
 *     conversation and its messages stay (product_id becomes null), so nothing reported is lost;
 *   - a message is 1..5000 characters, from one party to the other, and immutable: only
 *     read_at may be set, once, by the recipient reading it (trigger, binding the owner too);
 *   - one report per message (only its recipient may report it), with a reason;
 *   - writes only through the SECURITY DEFINER functions in sql/functions/51_messages.sql:
 *     no client role holds insert, update or delete on these tables;
 *   - every column a policy filters on (guest_id, host_id, sender_id, recipient_id, and the
 *     reports' message_id and conversation_id) is indexed.
 */

create table app_private.message_settings (
  id boolean primary key default true check (id),
  max_messages integer not null default 30 check (max_messages between 1 and 10000),
  window_seconds integer not null default 60 check (window_seconds between 1 and 86400)
);
insert into app_private.message_settings default values;
comment on table app_private.message_settings is
  'Message settings (one row; a DBA changes them with UPDATE): how many messages one sender may send in a sliding window. Read through app_private.message_config().';
comment on column app_private.message_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.message_settings.max_messages is 'How many messages one user may send within window_seconds; the next is refused with 429 and Retry-After. Default 30.';
comment on column app_private.message_settings.window_seconds is 'The sliding window of the rate limit, in seconds. Default 60 (30 messages a minute).';

create table app.conversations (
  id uuid primary key default gen_random_uuid(),
  product_id uuid references app.products (id) on delete set null,
  guest_id uuid not null references app.users (id),
  host_id uuid not null references app.users (id),
  created_at timestamptz not null default now(),
  last_message_at timestamptz not null default now(),
  constraint conversations_product_guest_key unique (product_id, guest_id),
  constraint conversations_two_parties_check check (guest_id <> host_id)
);
create index conversations_guest_idx on app.conversations (guest_id, last_message_at desc, id);
create index conversations_host_idx on app.conversations (host_id, last_message_at desc, id);
comment on table app.conversations is
  'A conversation between a listing''s host and one guest about that listing (one per listing and guest). Only its two parties read it; admins read it only once one of its messages is reported.';
comment on column app.conversations.id is 'Conversation id.';
comment on column app.conversations.product_id is 'The listing it is about; null once the listing was deleted (the conversation and its messages stay).';
comment on column app.conversations.guest_id is 'The guest: who inquired about or booked the listing.';
comment on column app.conversations.host_id is 'The listing''s host.';
comment on column app.conversations.created_at is 'When the first message was sent.';
comment on column app.conversations.last_message_at is 'When the latest message was sent (maintained by trigger); lists show the newest activity first.';

create table app.messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references app.conversations (id) on delete cascade,
  sender_id uuid not null references app.users (id),
  recipient_id uuid not null references app.users (id),
  body text not null check (length(body) between 1 and 5000),
  sent_at timestamptz not null default now(),
  read_at timestamptz,
  constraint messages_two_parties_check check (sender_id <> recipient_id),
  constraint messages_read_after_sent_check check (read_at >= sent_at)
);
create index messages_conversation_idx on app.messages (conversation_id, sent_at desc, id desc);
create index messages_sender_idx on app.messages (sender_id, sent_at desc);
create index messages_recipient_idx on app.messages (recipient_id);
create index messages_unread_idx on app.messages (recipient_id, conversation_id) where read_at is null;
comment on table app.messages is
  'A message from one party of a conversation to the other (the seed''s Message). Plain text, immutable once sent; only read_at is ever set, when the recipient reads it.';
comment on column app.messages.id is 'Message id (the keyset cursor of GET /api/conversations/{id}/messages/?before=).';
comment on column app.messages.conversation_id is 'The conversation.';
comment on column app.messages.sender_id is 'Who sent it (a party of the conversation; the seed''s sender).';
comment on column app.messages.recipient_id is 'The other party (the seed''s recipient).';
comment on column app.messages.body is 'The text, 1 to 5000 characters, plain text (the seed''s message_body); never rendered as HTML by the API.';
comment on column app.messages.sent_at is 'When it was sent.';
comment on column app.messages.read_at is 'When the recipient read it (POST /api/conversations/{id}/read/); null while unread.';

create table app.message_reports (
  id uuid primary key default gen_random_uuid(),
  message_id uuid not null references app.messages (id) on delete cascade,
  conversation_id uuid not null references app.conversations (id) on delete cascade,
  reporter_id uuid not null references app.users (id),
  reason text not null check (length(reason) between 1 and 1000),
  created_at timestamptz not null default now(),
  constraint message_reports_message_key unique (message_id)
);
create index message_reports_conversation_idx on app.message_reports (conversation_id);
create index message_reports_created_idx on app.message_reports (created_at desc, id);
comment on table app.message_reports is
  'A message reported by its recipient (one report per message). A report makes the message and its conversation readable by admins (moderation); nothing else of the conversation.';
comment on column app.message_reports.id is 'Report id.';
comment on column app.message_reports.message_id is 'The reported message.';
comment on column app.message_reports.conversation_id is 'The message''s conversation (copied from the message, so the admins'' policy on conversations needs no join).';
comment on column app.message_reports.reporter_id is 'Who reported it: the message''s recipient.';
comment on column app.message_reports.reason is 'Why, in the reporter''s words (1 to 1000 characters).';
comment on column app.message_reports.created_at is 'When reported.';

alter table app_private.message_settings enable row level security, force row level security;
alter table app.conversations enable row level security, force row level security;
alter table app.messages enable row level security, force row level security;
alter table app.message_reports enable row level security, force row level security;
