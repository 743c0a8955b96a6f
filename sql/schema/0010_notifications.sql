/*
 * 0010 notifications: what users hear about, in the app and by email, from an outbox.
 *
 * Why: guests and hosts must hear about what matters to them (a booking requested,
 * confirmed or canceled, money taken, refunded or paid out, a message, a review), and no
 * event may be lost or sent twice because a process crashed or the mail relay was down.
 *
 * Guarantees after this file:
 *   - a notification row is written in the same transaction as the change that causes it
 *     (by app_private.notify, from the triggers in sql/functions/60_notifications.sql), so
 *     it exists exactly when its event committed;
 *   - each row carries its type, recipient, data and a per-channel delivery state: in_app
 *     (shown in the user's list) and email_state (skipped | pending | sent | dead), with a
 *     stable Message-ID so a retried send is recognisable;
 *   - templates (subject, text, HTML) are rows of app_private.notification_types, one per
 *     type, next to who may turn the type off;
 *   - users read only their own notifications (RLS); nobody writes them but the functions.
 */

create table app_private.notification_settings (
  id boolean primary key default true check (id),
  email_max_attempts integer not null default 10 check (email_max_attempts between 1 and 50),
  message_email_minutes integer not null default 15 check (message_email_minutes between 0 and 1440),
  from_name text not null default 'Nexus' check (length(from_name) between 1 and 100)
);
insert into app_private.notification_settings default values;
comment on table app_private.notification_settings is
  'Notification settings (one row; a DBA changes them with UPDATE). Read through app_private.notification_config().';
comment on column app_private.notification_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.notification_settings.email_max_attempts is 'How many times the worker tries to hand an email to the relay before it is a dead letter (email_state dead, visible to admins); the waits between attempts grow 3, 9, 27 ... seconds, so 10 attempts span about 8 hours. Default 10.';
comment on column app_private.notification_settings.message_email_minutes is 'At most one new-message email per conversation and recipient in this many minutes (in-app always). Default 15.';
comment on column app_private.notification_settings.from_name is 'The display name emails are sent from (the address is EMAIL_FROM).';

create table app_private.notification_types (
  type text primary key check (type ~ '^[a-z_]{3,50}$'),
  description text not null check (length(description) between 1 and 300),
  mandatory boolean not null default false,
  email_default boolean not null default true,
  in_app_default boolean not null default true,
  subject text not null check (length(subject) between 1 and 300),
  text_body text not null check (length(text_body) between 1 and 5000),
  html_body text not null check (length(html_body) between 1 and 10000)
);
comment on table app_private.notification_types is
  'Every kind of notification, its defaults and its email template. Templates use {{name}} placeholders filled from the notification''s data, plus {{first_name}} (the recipient) and {{frontend_url}} (FRONTEND_URL); in html_body every value is HTML-escaped. A DBA may edit the wording with UPDATE.';
comment on column app_private.notification_types.type is 'The type name, e.g. booking_confirmed.';
comment on column app_private.notification_types.description is 'Who hears it, and when.';
comment on column app_private.notification_types.mandatory is 'Security notices: the user cannot turn them off.';
comment on column app_private.notification_types.email_default is 'Whether users get it by email unless they say otherwise.';
comment on column app_private.notification_types.in_app_default is 'Whether users see it in the app unless they say otherwise.';
comment on column app_private.notification_types.subject is 'Email subject template.';
comment on column app_private.notification_types.text_body is 'Plain-text email template.';
comment on column app_private.notification_types.html_body is 'HTML email template (values escaped when rendered).';

insert into app_private.notification_types (type, description, mandatory, email_default, subject, text_body, html_body) values
('booking_requested', 'Host: a guest booked one of your listings and is paying (the dates are held).', false, true,
 'New booking request for {{listing}}',
 E'Hi {{first_name}},\n\nA guest booked {{listing}} from {{start_date}} to {{end_date}} ({{total}} {{currency}}).\n\n{{frontend_url}}/host/bookings/{{booking_id}}\n',
 '<p>Hi {{first_name}},</p><p>A guest booked <b>{{listing}}</b> from {{start_date}} to {{end_date}} ({{total}} {{currency}}).</p><p><a href="{{frontend_url}}/host/bookings/{{booking_id}}">See the booking</a></p>'),
('booking_confirmed', 'Guest and host: a booking is confirmed (paid, or confirmed by the host).', false, true,
 'Booking confirmed: {{listing}}, {{start_date}} to {{end_date}}',
 E'Hi {{first_name}},\n\nThe stay at {{listing}} from {{start_date}} to {{end_date}} is confirmed.\n\n{{frontend_url}}/bookings/{{booking_id}}\n',
 '<p>Hi {{first_name}},</p><p>The stay at <b>{{listing}}</b> from {{start_date}} to {{end_date}} is confirmed.</p><p><a href="{{frontend_url}}/bookings/{{booking_id}}">See the booking</a></p>'),
('booking_canceled', 'The other party (both, when an admin cancels): a booking was canceled, with the refund.', false, true,
 'Booking canceled: {{listing}}, {{start_date}} to {{end_date}}',
 E'Hi {{first_name}},\n\nThe stay at {{listing}} from {{start_date}} to {{end_date}} was canceled. Refund under the policy: {{refund}} {{currency}}.\n\n{{frontend_url}}/bookings/{{booking_id}}\n',
 '<p>Hi {{first_name}},</p><p>The stay at <b>{{listing}}</b> from {{start_date}} to {{end_date}} was canceled. Refund under the policy: {{refund}} {{currency}}.</p><p><a href="{{frontend_url}}/bookings/{{booking_id}}">See the booking</a></p>'),
('hold_expired', 'Guest: a booking was not paid in time and its dates were released.', false, true,
 'Your hold on {{listing}} expired',
 E'Hi {{first_name}},\n\nYour booking of {{listing}} from {{start_date}} to {{end_date}} was not paid in time, so the dates were released. You can book again if they are still free.\n\n{{frontend_url}}/listings/{{product_id}}\n',
 '<p>Hi {{first_name}},</p><p>Your booking of <b>{{listing}}</b> from {{start_date}} to {{end_date}} was not paid in time, so the dates were released.</p><p><a href="{{frontend_url}}/listings/{{product_id}}">Book again</a></p>'),
('stay_completed', 'Guest: a stay is over; an invitation to review it.', false, true,
 'How was {{listing}}?',
 E'Hi {{first_name}},\n\nWe hope you enjoyed {{listing}}. You can review your stay for the next {{review_days}} days.\n\n{{frontend_url}}/bookings/{{booking_id}}/review\n',
 '<p>Hi {{first_name}},</p><p>We hope you enjoyed <b>{{listing}}</b>. You can review your stay for the next {{review_days}} days.</p><p><a href="{{frontend_url}}/bookings/{{booking_id}}/review">Write a review</a></p>'),
('payment_succeeded', 'Guest: a payment went through.', false, true,
 'Payment received: {{amount}} {{currency}}',
 E'Hi {{first_name}},\n\nWe received your payment of {{amount}} {{currency}} for {{listing}}.\n\n{{frontend_url}}/bookings/{{booking_id}}\n',
 '<p>Hi {{first_name}},</p><p>We received your payment of {{amount}} {{currency}} for <b>{{listing}}</b>.</p><p><a href="{{frontend_url}}/bookings/{{booking_id}}">See the booking</a></p>'),
('payment_failed', 'Guest: a payment failed (declined, or the provider could not be reached).', false, true,
 'Your payment for {{listing}} did not go through',
 E'Hi {{first_name}},\n\nYour payment of {{amount}} {{currency}} for {{listing}} failed: {{reason}}\nYou can try again while your booking is held.\n\n{{frontend_url}}/bookings/{{booking_id}}\n',
 '<p>Hi {{first_name}},</p><p>Your payment of {{amount}} {{currency}} for <b>{{listing}}</b> failed: {{reason}}</p><p><a href="{{frontend_url}}/bookings/{{booking_id}}">Try again</a></p>'),
('refund_succeeded', 'Guest: money went back to you.', false, true,
 'Refund sent: {{amount}} {{currency}}',
 E'Hi {{first_name}},\n\nWe refunded {{amount}} {{currency}} for {{listing}}. It may take a few days to show on your statement.\n\n{{frontend_url}}/bookings/{{booking_id}}\n',
 '<p>Hi {{first_name}},</p><p>We refunded {{amount}} {{currency}} for <b>{{listing}}</b>. It may take a few days to show on your statement.</p>'),
('payout_sent', 'Host: a payout was sent.', false, true,
 'Payout sent: {{amount}} {{currency}}',
 E'Hi {{first_name}},\n\nWe sent you {{amount}} {{currency}} for the stay at {{listing}} (platform fee {{fee}} {{currency}}).\n\n{{frontend_url}}/host/payouts\n',
 '<p>Hi {{first_name}},</p><p>We sent you {{amount}} {{currency}} for the stay at <b>{{listing}}</b> (platform fee {{fee}} {{currency}}).</p><p><a href="{{frontend_url}}/host/payouts">See your payouts</a></p>'),
('payout_failed', 'Host: a payout could not be delivered; check your payout account.', false, true,
 'Your payout of {{amount}} {{currency}} could not be delivered',
 E'Hi {{first_name}},\n\nYour payout of {{amount}} {{currency}} for {{listing}} could not be delivered: {{reason}}\nPlease check your payout account.\n\n{{frontend_url}}/host/payouts\n',
 '<p>Hi {{first_name}},</p><p>Your payout of {{amount}} {{currency}} for <b>{{listing}}</b> could not be delivered: {{reason}}</p><p><a href="{{frontend_url}}/host/payouts">Check your payout account</a></p>'),
('new_message', 'Recipient: a new message (email at most once per conversation every 15 minutes; in the app always).', false, true,
 'New message from {{sender}} about {{listing}}',
 E'Hi {{first_name}},\n\n{{sender}} wrote about {{listing}}:\n\n{{excerpt}}\n\n{{frontend_url}}/conversations/{{conversation_id}}\n',
 '<p>Hi {{first_name}},</p><p>{{sender}} wrote about <b>{{listing}}</b>:</p><blockquote>{{excerpt}}</blockquote><p><a href="{{frontend_url}}/conversations/{{conversation_id}}">Reply</a></p>'),
('new_review', 'Host: a guest reviewed one of your listings.', false, true,
 'New {{rating}}-star review of {{listing}}',
 E'Hi {{first_name}},\n\n{{reviewer}} rated {{listing}} {{rating}}/5:\n\n{{excerpt}}\n\n{{frontend_url}}/host/reviews/{{review_id}}\n',
 '<p>Hi {{first_name}},</p><p>{{reviewer}} rated <b>{{listing}}</b> {{rating}}/5:</p><blockquote>{{excerpt}}</blockquote><p><a href="{{frontend_url}}/host/reviews/{{review_id}}">Respond</a></p>'),
('review_response', 'Guest: the host responded to your review.', false, true,
 'The host responded to your review of {{listing}}',
 E'Hi {{first_name}},\n\nThe host of {{listing}} responded to your review:\n\n{{excerpt}}\n\n{{frontend_url}}/listings/{{product_id}}\n',
 '<p>Hi {{first_name}},</p><p>The host of <b>{{listing}}</b> responded to your review:</p><blockquote>{{excerpt}}</blockquote>'),
('new_sign_in', 'Security, cannot be turned off: a sign-in to your account from an address not seen in 90 days.', true, true,
 'New sign-in to your Nexus account',
 E'Hi {{first_name}},\n\nYour account was signed in to from {{client_addr}} at {{at}}. If this was not you, change your password and sign out everywhere.\n\n{{frontend_url}}/account/security\n',
 '<p>Hi {{first_name}},</p><p>Your account was signed in to from {{client_addr}} at {{at}}. If this was not you, change your password and sign out everywhere.</p><p><a href="{{frontend_url}}/account/security">Account security</a></p>');

create type app.email_state as enum ('skipped', 'pending', 'sent', 'dead');
comment on type app.email_state is
  'A notification''s email: skipped (not wanted, or throttled), pending (a job will send it), sent (the relay accepted it, or it is in the local outbox), dead (the relay refused it email_max_attempts times: a dead letter, visible to admins).';

create table app.notifications (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  user_id uuid not null references app.users (id) on delete cascade,
  type text not null references app_private.notification_types (type),
  data jsonb not null default '{}' check (jsonb_typeof(data) = 'object'),
  in_app boolean not null,
  read_at timestamptz,
  email_state app.email_state not null,
  email_attempts integer not null default 0 check (email_attempts >= 0),
  email_error text check (length(email_error) <= 1000),
  email_sent_at timestamptz,
  created_at timestamptz not null default now(),
  constraint notifications_sent_check check ((email_state = 'sent') = (email_sent_at is not null))
);
create index notifications_user_idx on app.notifications (user_id, seq desc) where in_app;
create index notifications_unread_idx on app.notifications (user_id) where in_app and read_at is null;
create index notifications_dead_idx on app.notifications (created_at) where email_state = 'dead';
comment on table app.notifications is
  'One notification for one user, written in the same transaction as its cause (app_private.notify). in_app rows are the user''s list; email_state tracks the email delivered by the worker from this outbox. Users read their own; only the functions write.';
comment on column app.notifications.id is 'Notification id; its email''s Message-ID is <id.email@nexus> (the same on every retry).';
comment on column app.notifications.seq is 'Order of creation: the Server-Sent Events id (Last-Event-ID replays what came after it).';
comment on column app.notifications.user_id is 'The recipient.';
comment on column app.notifications.type is 'What happened (app_private.notification_types).';
comment on column app.notifications.data is 'What the message needs: ids, amounts (decimal strings), dates, names. No secrets.';
comment on column app.notifications.in_app is 'Shown in the user''s notification list (their preference when it was written).';
comment on column app.notifications.read_at is 'When the user marked it read.';
comment on column app.notifications.email_state is 'See app.email_state.';
comment on column app.notifications.email_attempts is 'How many times the worker tried to hand the email to the relay.';
comment on column app.notifications.email_error is 'The relay''s last refusal or the connection error.';
comment on column app.notifications.email_sent_at is 'When the relay accepted the email (or it went to the local outbox).';
comment on column app.notifications.created_at is 'When the event happened.';

create table app_private.email_outbox (
  id bigint generated always as identity primary key,
  notification_id uuid not null unique references app.notifications (id) on delete cascade,
  message_id text not null,
  to_address text not null,
  subject text not null,
  text_body text not null,
  html_body text not null,
  created_at timestamptz not null default now()
);
comment on table app_private.email_outbox is
  'Emails kept locally instead of sent, when no SMTP_HOST is configured (make run offline): `make outbox` prints the newest. One per notification.';
comment on column app_private.email_outbox.id is 'Order kept.';
comment on column app_private.email_outbox.notification_id is 'The notification the email is for.';
comment on column app_private.email_outbox.message_id is 'The email''s Message-ID.';
comment on column app_private.email_outbox.to_address is 'The recipient''s address.';
comment on column app_private.email_outbox.subject is 'Rendered subject.';
comment on column app_private.email_outbox.text_body is 'Rendered plain text.';
comment on column app_private.email_outbox.html_body is 'Rendered HTML.';
comment on column app_private.email_outbox.created_at is 'When kept.';

alter table app_private.notification_settings enable row level security, force row level security;
alter table app_private.notification_types enable row level security, force row level security;
alter table app.notifications enable row level security, force row level security;
alter table app_private.email_outbox enable row level security, force row level security;
