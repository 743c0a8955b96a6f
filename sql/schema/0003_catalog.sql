/*
 * 0003 catalog: currencies, categories, amenities, products (listings) and their photos.
 *
 * Why: a product is a rentable listing (the seed's Product: property_id, host_id,
 * location, pricepernight). Money is exact numeric with an ISO 4217 code checked
 * against app.currencies. The full-text vector is a generated column (weighted: name A,
 * location B, description C), so PostgreSQL keeps it current. Every filter and
 * ordering the API offers has an index here.
 */

create table app.currencies (
  code char(3) primary key check (code ~ '^[A-Z]{3}$'),
  name text not null,
  minor_units smallint not null check (minor_units between 0 and 4)
);
comment on table app.currencies is 'ISO 4217 currencies accepted for prices and payments.';
comment on column app.currencies.code is 'ISO 4217 alphabetic code, e.g. USD.';
comment on column app.currencies.name is 'Currency name.';
comment on column app.currencies.minor_units is 'Digits after the decimal point (2 for USD, 0 for JPY).';
insert into app.currencies (code, name, minor_units) values
  ('USD', 'US Dollar', 2), ('EUR', 'Euro', 2), ('GBP', 'Pound Sterling', 2), ('NGN', 'Naira', 2),
  ('KES', 'Kenyan Shilling', 2), ('GHS', 'Ghana Cedi', 2), ('ZAR', 'Rand', 2), ('EGP', 'Egyptian Pound', 2),
  ('MAD', 'Moroccan Dirham', 2), ('CAD', 'Canadian Dollar', 2), ('AUD', 'Australian Dollar', 2),
  ('JPY', 'Yen', 0), ('CHF', 'Swiss Franc', 2), ('INR', 'Indian Rupee', 2), ('BRL', 'Brazilian Real', 2);

create table app.categories (
  id uuid primary key default gen_random_uuid(),
  name text not null unique check (length(btrim(name)) between 1 and 100),
  slug text not null unique check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and length(slug) <= 100),
  description text not null default '',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table app.categories is 'Listing categories (apartment, villa, cabin, ...). Everyone reads; admins write.';
comment on column app.categories.id is 'Category id.';
comment on column app.categories.name is 'Display name; unique.';
comment on column app.categories.slug is 'URL name: lowercase letters, digits and single hyphens; unique; generated from the name when not given.';
comment on column app.categories.description is 'Optional description.';
comment on column app.categories.created_at is 'When created.';
comment on column app.categories.updated_at is 'When last changed.';

create table app.amenities (
  slug text primary key check (slug ~ '^[a-z0-9]+(_[a-z0-9]+)*$'),
  name text not null
);
comment on table app.amenities is 'What a listing can offer (wifi, pool, pet_friendly, ...). Clients send and receive the slugs.';
comment on column app.amenities.slug is 'Amenity code, e.g. wifi, pool, pet_friendly.';
comment on column app.amenities.name is 'Display name.';
insert into app.amenities (slug, name) values
  ('wifi', 'Wi-Fi'), ('pool', 'Pool'), ('pet_friendly', 'Pet friendly'), ('parking', 'Free parking'),
  ('kitchen', 'Kitchen'), ('air_conditioning', 'Air conditioning'), ('heating', 'Heating'),
  ('washer', 'Washer'), ('tv', 'TV'), ('workspace', 'Dedicated workspace'), ('gym', 'Gym'),
  ('hot_tub', 'Hot tub'), ('beach_access', 'Beach access'), ('generator', 'Backup generator'),
  ('security', '24h security');

create type app.cancellation_policy as enum ('flexible', 'moderate', 'strict');
comment on type app.cancellation_policy is 'flexible: full refund until 24 h before check-in; moderate: full until 5 days before, 50% after; strict: 50% until 7 days before, nothing after.';

create table app.products (
  id uuid primary key default gen_random_uuid(),
  host_id uuid not null references app.users (id),
  category_id uuid not null references app.categories (id),
  name text not null check (length(btrim(name)) between 1 and 200),
  description text not null check (length(description) <= 10000),
  location text not null check (length(btrim(location)) between 1 and 300),
  price_per_night numeric(12, 2) not null check (price_per_night > 0),
  currency char(3) not null default 'USD' references app.currencies (code),
  max_guests integer not null check (max_guests between 1 and 100),
  cancellation_policy app.cancellation_policy not null default 'moderate',
  published boolean not null default true,
  rating_avg numeric(3, 2) not null default 0 check (rating_avg between 0 and 5),
  rating_count integer not null default 0 check (rating_count >= 0),
  search tsvector generated always as (
    setweight(to_tsvector('english'::regconfig, name), 'A') ||
    setweight(to_tsvector('english'::regconfig, location), 'B') ||
    setweight(to_tsvector('english'::regconfig, description), 'C')
  ) stored,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table app.products is 'Listings (the seed''s Product/Property): a rentable place offered by a host. Published ones are public; hosts manage their own; admins all.';
comment on column app.products.id is 'Listing id (the seed''s property_id).';
comment on column app.products.host_id is 'The host who owns the listing; taken from the token, never from a request body.';
comment on column app.products.category_id is 'The category.';
comment on column app.products.name is 'Title.';
comment on column app.products.description is 'Description (full-text searchable).';
comment on column app.products.location is 'Free-text place, e.g. "Lekki, Lagos, Nigeria"; the location filter matches any part of it, ignoring case.';
comment on column app.products.price_per_night is 'Price per night, exact decimal in currency.';
comment on column app.products.currency is 'ISO 4217 code of price_per_night.';
comment on column app.products.max_guests is 'How many guests may stay.';
comment on column app.products.cancellation_policy is 'Refund rule when a guest cancels (see type app.cancellation_policy).';
comment on column app.products.published is 'Visible to everyone when true; otherwise only to its host and admins.';
comment on column app.products.rating_avg is 'Average review rating (0 when none), kept current by the reviews.';
comment on column app.products.rating_count is 'Number of reviews.';
comment on column app.products.search is 'Weighted full-text vector (name A, location B, description C), generated by PostgreSQL.';
comment on column app.products.created_at is 'When listed.';
comment on column app.products.updated_at is 'When last changed.';

create index products_category_idx on app.products (category_id, price_per_night);
create index products_host_idx on app.products (host_id);
create index products_price_idx on app.products (price_per_night, id);
create index products_created_at_idx on app.products (created_at, id);
create index products_rating_idx on app.products (rating_avg, id);
create index products_name_idx on app.products (name, id);
create index products_max_guests_idx on app.products (max_guests);
create index products_search_idx on app.products using gin (search);
create index products_location_trgm_idx on app.products using gin (location extensions.gin_trgm_ops);
-- Price in minor units (cents) as bigint, for the min_price/max_price filters. Why: RLS is
-- forced on app.products, and under RLS the planner uses column statistics only for
-- leakproof operators; numeric comparisons are not leakproof, bigint ones are. Filtering
-- on this column gives the planner real selectivities (measured: 435 ms -> 5 ms for
-- price+guests+amenities on 100k listings).
alter table app.products add column price_cents bigint generated always as ((price_per_night * 100)::bigint) stored;
comment on column app.products.price_cents is 'price_per_night x 100 as bigint (generated): the price filters compare this, so the planner has statistics for them under row-level security.';
create index products_price_cents_idx on app.products (price_cents, id);
-- The published listings' ids: counts (up to the list's cap) and the free-dates anti-join
-- over the whole public catalog read this small index instead of the table.
create index products_published_idx on app.products (id) where published;

create table app.product_amenities (
  product_id uuid not null references app.products (id) on delete cascade,
  amenity text not null references app.amenities (slug),
  primary key (product_id, amenity)
);
create index product_amenities_amenity_idx on app.product_amenities (amenity, product_id);
comment on table app.product_amenities is 'Which amenities each listing offers.';
comment on column app.product_amenities.product_id is 'The listing.';
comment on column app.product_amenities.amenity is 'The amenity slug.';

create table app.product_photos (
  id uuid primary key default gen_random_uuid(),
  product_id uuid not null references app.products (id) on delete cascade,
  path text not null,
  content_type text not null check (content_type in ('image/jpeg', 'image/png', 'image/webp')),
  size_bytes integer not null check (size_bytes > 0),
  position integer not null default 0,
  created_at timestamptz not null default now()
);
create index product_photos_product_idx on app.product_photos (product_id, position);
comment on table app.product_photos is 'Listing photos, stored on file storage under generated names; ordered by position.';
comment on column app.product_photos.id is 'Photo id.';
comment on column app.product_photos.product_id is 'The listing.';
comment on column app.product_photos.path is 'File path relative to MEDIA_ROOT (served under MEDIA_URL).';
comment on column app.product_photos.content_type is 'Image type, checked from the file''s content: JPEG, PNG or WebP.';
comment on column app.product_photos.size_bytes is 'File size in bytes.';
comment on column app.product_photos.position is 'Display order (0 first).';
comment on column app.product_photos.created_at is 'When uploaded.';

alter table app.currencies enable row level security, force row level security;
alter table app.categories enable row level security, force row level security;
alter table app.amenities enable row level security, force row level security;
alter table app.products enable row level security, force row level security;
alter table app.product_amenities enable row level security, force row level security;
alter table app.product_photos enable row level security, force row level security;
grant usage on type app.cancellation_policy to anon, guest, host, admin;
