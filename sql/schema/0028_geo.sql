/*
 * 0028 geo: where a listing is. Its exact place is private; the map shows a point near it.
 *
 * Why: guests search a rental marketplace on a map (a radius around a place, a viewport,
 * nearest first), but a host's exact address is theirs until a stay is confirmed. So a listing
 * has two places:
 *   - app.product_addresses: the exact point (latitude, longitude) and the street address the
 *     host gives, behind row-level security: its host, admins, and a guest whose booking of it
 *     is confirmed (or completed) read it; nobody else sees a row (sql/policies/20_catalog.sql).
 *   - app.products.map_latitude / map_longitude / map_point: the public point, the exact one
 *     moved 150 to 400 m in a direction, both drawn from an HMAC of the listing's id with a
 *     secret (app_private.map_settings). It is the same on every read (a map pin never moves),
 *     it cannot be undone without the secret (the id and the method are public), and averaging
 *     many answers learns nothing, as every answer carries the same offset. Every search
 *     (radius, viewport, distance, facets) reads only this point, so no answer says more
 *     about the exact place than the offset allows. A trigger keeps it (20_catalog functions).
 *
 * PostGIS (Debian's postgresql-15-postgis-3) gives map_point its type, distance on the sphere
 * and GiST indexes for radius and nearest-first searches (geography) and for viewports
 * (geometry: a viewport is a rectangle of longitudes and latitudes, as a map draws it).
 * PostGIS is not a trusted extension: only a superuser (or a managed service's admin role:
 * RDS rds_superuser, Cloud SQL cloudsqlsuperuser, Azure azure_pg_admin once allow-listed)
 * may create it. sql/superuser.sql does that once per database before the first migrate
 * (scripts/pg-local, the tests and the bench run it); an owner that may create it needs nothing.
 *
 * Guarantees after this file:
 *   - postgis is installed in schema extensions;
 *   - a listing's public point is null or the HMAC-offset of its exact point (a trigger,
 *     sql/functions/21_products.sql), and map_point is always the point of map_latitude/longitude;
 *   - published listings with a point are in products_map_point_idx (geography) and
 *     products_map_box_idx (geometry); name and location have trigram indexes for the fuzzy search;
 *   - products.amenity_slugs is the sorted set of the listing's app.product_amenities (a trigger).
 */

do $$
begin
  if not exists (select from pg_extension where extname = 'postgis') then
    create extension postgis with schema extensions;
  end if;
exception when insufficient_privilege then
  raise exception using
    errcode = 'insufficient_privilege',
    message = 'PostGIS must be created by a superuser: this role may not create it.',
    hint = format('Run sql/superuser.sql in database %s as a superuser (psql -d %s -f sql/superuser.sql), '
                  'or on a managed service as its admin role: create extension postgis with schema extensions; '
                  'then migrate again.', current_database(), current_database());
end
$$;
comment on schema extensions is 'Extensions (pgcrypto, btree_gist, btree_gin, pg_trgm, postgis), kept out of public; used by the owner''s functions and indexes.';

create table app_private.map_settings (
  id boolean primary key default true check (id),
  secret bytea not null default extensions.gen_random_bytes(32) check (length(secret) >= 16),
  offset_min_m double precision not null default 150 check (offset_min_m >= 50),
  offset_max_m double precision not null default 400 check (offset_max_m >= offset_min_m and offset_max_m <= 5000)
);
insert into app_private.map_settings default values;
alter table app_private.map_settings enable row level security, force row level security;
comment on table app_private.map_settings is
  'How a listing''s public map point is drawn from its exact one (one row; a DBA changes it with UPDATE, and every public point is drawn again in that statement). Read only by the owner.';
comment on column app_private.map_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.map_settings.secret is 'The HMAC key of the offsets: with it (and a listing''s id) the offset can be undone, so it never leaves the database. Random; set it to a new random value to move every public point.';
comment on column app_private.map_settings.offset_min_m is 'The least distance, in metres, between a listing''s exact point and its public one. Default 150.';
comment on column app_private.map_settings.offset_max_m is 'The greatest distance, in metres, between a listing''s exact point and its public one. Default 400.';

create table app.product_addresses (
  product_id uuid primary key references app.products (id) on delete cascade,
  latitude double precision check (latitude between -90 and 90),
  longitude double precision check (longitude between -180 and 180),
  address text check (length(btrim(address)) between 1 and 300),
  updated_at timestamptz not null default now(),
  constraint product_addresses_point_check check ((latitude is null) = (longitude is null))
);
comment on table app.product_addresses is
  'Where a listing exactly is: its point and street address, as its host gave them. Private: its host, admins, and a guest whose booking of it is confirmed or completed read it (row-level security); the public sees app.products.map_point instead.';
comment on column app.product_addresses.product_id is 'The listing.';
comment on column app.product_addresses.latitude is 'Exact latitude, degrees north (WGS 84, -90 to 90); null with longitude when the host gave no point.';
comment on column app.product_addresses.longitude is 'Exact longitude, degrees east (WGS 84, -180 to 180); null with latitude when the host gave no point.';
comment on column app.product_addresses.address is 'The street address, for the guests of a confirmed stay; null when not given.';
comment on column app.product_addresses.updated_at is 'When last changed.';
alter table app.product_addresses enable row level security, force row level security;

alter table app.products add column map_latitude double precision check (map_latitude between -90 and 90);
alter table app.products add column map_longitude double precision check (map_longitude between -180 and 180);
alter table app.products add constraint products_map_point_check check ((map_latitude is null) = (map_longitude is null));
alter table app.products add column map_point extensions.geography(Point, 4326) generated always as (
  extensions.st_setsrid(extensions.st_makepoint(map_longitude, map_latitude), 4326)::extensions.geography
) stored;
comment on column app.products.map_latitude is 'The public latitude: the exact one (app.product_addresses) moved 150-400 m by a secret, fixed offset; null without a point. Kept by a trigger.';
comment on column app.products.map_longitude is 'The public longitude (see map_latitude).';
comment on column app.products.map_point is 'The public point as PostGIS geography (generated from map_latitude/map_longitude): what radius, viewport and distance searches read.';

create index products_map_point_idx on app.products using gist (map_point) where published;
comment on index app.products_map_point_idx is
  'Published listings by public point (geography): near=...&radius_km= (ST_DWithin) and ordering=distance (KNN, <->).';
-- The same point as geometry, for viewports (a rectangle of longitudes and latitudes, &&). A column
-- rather than an index on an expression: PostGIS estimates && from a column's statistics, and
-- without them it guessed 9 listings for a city's 4,700 (and read them all to sort them).
alter table app.products add column map_geom extensions.geometry(Point, 4326) generated always as (
  extensions.st_setsrid(extensions.st_makepoint(map_longitude, map_latitude), 4326)
) stored;
comment on column app.products.map_geom is 'The public point as PostGIS geometry (generated from map_latitude/map_longitude): what viewport (bbox) searches read.';
create index products_map_box_idx on app.products using gist (map_geom) where published;
comment on index app.products_map_box_idx is
  'Published listings by public point as geometry: bbox= viewports, rectangles of longitudes and latitudes (&&).';

-- The facets count amenities over the listings a search matches: from a sorted copy of each
-- listing's slugs on its own row (kept by a trigger on app.product_amenities, 21_products.sql),
-- read with the row, rather than one index probe per match and amenity (55 of the 70 ms of the
-- seed query's facets on the bench data).
alter table app.products add column amenity_slugs text[] not null default '{}';
comment on column app.products.amenity_slugs is 'The listing''s amenity slugs, sorted: a copy of app.product_amenities kept by its trigger, for the facets.';
update app.products p set amenity_slugs = a.slugs
  from (select pa.product_id, array_agg(pa.amenity order by pa.amenity) as slugs
        from app.product_amenities pa group by pa.product_id) a
 where a.product_id = p.id;
-- fastupdate off, as products_published_search_idx (0014): listings are written rarely and
-- searched constantly, so no pending list for every search to scan (and to cost: with one, the
-- planner would rather filter every published row than read these indexes).
create index products_name_trgm_idx on app.products using gin (name extensions.gin_trgm_ops) with (fastupdate = off);
comment on index app.products_name_trgm_idx is
  'Trigrams of listing names: the fuzzy search (word similarity) when full-text search finds nothing. fastupdate off.';
alter index app.products_location_trgm_idx set (fastupdate = off);
select pg_catalog.gin_clean_pending_list('app.products_location_trgm_idx'); -- what the pending list held goes into the index

alter type app.page add attribute fuzzy boolean;
comment on type app.page is
  'One page of a list: count (matching rows in all), page (from 1), page_size, results (a JSON array), next_cursor (an opaque token where the next page starts, for a list read by cursor; null otherwise or on the last page), fuzzy (true when a search found nothing by full text and these results are by similarity; null for other lists). The API wraps it in the DRF envelope {count, next, previous, results}.';
