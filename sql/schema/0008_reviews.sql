/*
 * 0008 reviews: a guest's review of a completed stay, the host's response, moderation.
 *
 * Why: the seed's Review (id, property, user, rating 1-5, comment, created_at), made so a
 * review cannot be faked: it belongs to one completed booking and is written by that
 * booking's guest, once, within a window after check-out.
 *
 * Guarantees after this file:
 *   - one review per booking (unique booking_id); rating an integer 1..5; comment 1..5000
 *     characters; a response 1..5000 characters;
 *   - the listing's rating_avg and rating_count are kept exact by a trigger in the same
 *     transaction (sql/functions/50_reviews.sql), over visible (not hidden) reviews;
 *   - writes only through the functions in sql/functions/50_reviews.sql: no client role
 *     holds insert, update or delete on the table.
 */

create table app_private.review_settings (
  id boolean primary key default true check (id),
  window_days integer not null default 14 check (window_days between 1 and 365),
  edit_hours integer not null default 48 check (edit_hours between 0 and 720)
);
insert into app_private.review_settings default values;
comment on table app_private.review_settings is
  'Review settings (one row; a DBA changes them with UPDATE). Read through app_private.review_config().';
comment on column app_private.review_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.review_settings.window_days is 'How many days after check-out a guest may review the stay. Default 14.';
comment on column app_private.review_settings.edit_hours is 'How long after writing it the author may edit a review (never once the host has responded). Default 48.';

create table app.reviews (
  id uuid primary key default gen_random_uuid(),
  booking_id uuid not null unique references app.bookings (id),
  product_id uuid not null references app.products (id) on delete cascade,
  guest_id uuid not null references app.users (id),
  host_id uuid not null references app.users (id),
  rating smallint not null check (rating between 1 and 5),
  comment text not null check (length(comment) between 1 and 5000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  response text check (length(response) between 1 and 5000),
  responded_at timestamptz,
  hidden_at timestamptz,
  hidden_by uuid references app.users (id),
  hidden_reason text check (length(hidden_reason) between 1 and 1000),
  constraint reviews_responded_check check ((response is null) = (responded_at is null)),
  constraint reviews_hidden_check check ((hidden_at is null) = (hidden_reason is null))
);
create index reviews_product_visible_idx on app.reviews (product_id, created_at desc, id) where hidden_at is null;
create index reviews_guest_idx on app.reviews (guest_id, created_at desc);
create index reviews_host_idx on app.reviews (host_id, created_at desc);
comment on table app.reviews is
  'A guest''s review of one completed stay (one per booking), the host''s response, and moderation. Visible reviews are public; hidden ones leave the public lists and the listing''s rating, and stay visible to their author, the host and admins.';
comment on column app.reviews.id is 'Review id.';
comment on column app.reviews.booking_id is 'The completed booking reviewed (one review per booking).';
comment on column app.reviews.product_id is 'The listing reviewed (the seed''s property).';
comment on column app.reviews.guest_id is 'The author: the booking''s guest (the seed''s user).';
comment on column app.reviews.host_id is 'The listing''s host, who may respond.';
comment on column app.reviews.rating is 'Integer 1 to 5.';
comment on column app.reviews.comment is 'The review text, 1 to 5000 characters, plain text.';
comment on column app.reviews.created_at is 'When written.';
comment on column app.reviews.updated_at is 'When last changed.';
comment on column app.reviews.response is 'The host''s response, 1 to 5000 characters; editable by the host.';
comment on column app.reviews.responded_at is 'When the host last wrote the response.';
comment on column app.reviews.hidden_at is 'When an admin hid the review (null: visible).';
comment on column app.reviews.hidden_by is 'The admin who hid it.';
comment on column app.reviews.hidden_reason is 'Why it was hidden (moderation note, shown to the author and the host).';

alter table app_private.review_settings enable row level security, force row level security;
alter table app.reviews enable row level security, force row level security;
