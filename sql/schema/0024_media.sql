/*
 * 0024 media: what a frontend needs to show a photo well, and where its files are.
 *
 * Why: a listing or profile photo was one full-size file; a search page of 20 results made a
 * phone download 20 originals. The API now decodes every upload (api/images.py) and knows its
 * pixel size and dominant colour; the worker makes smaller WebP copies (variants) after the
 * photo's row commits (sql/functions/24_media.sql). The files live in a storage backend
 * (MEDIA_STORAGE: a local folder or an S3 bucket, api/storage.py) under the photo's path;
 * a variant's path is the original's without its extension, then -w<width>.webp.
 *
 * Guarantees after this file: every photo row says its width and height in pixels (rows made
 * before this file say null until the worker reads them), its placeholder colour, and its
 * variants [{path, width, height}] (empty until made; never wider than the original).
 */

alter table app.product_photos
  add column width integer check (width > 0),
  add column height integer check (height > 0),
  add column placeholder text check (placeholder ~ '^#[0-9a-f]{6}$'),
  add column variants jsonb not null default '[]' check (jsonb_typeof(variants) = 'array');
comment on column app.product_photos.path is
  'The original''s path in the media storage (MEDIA_STORAGE: under MEDIA_ROOT, or the key in S3_BUCKET), a generated name <2 hex>/<32 hex>.<ext>; served under MEDIA_URL.';
comment on column app.product_photos.size_bytes is 'The stored original''s size in bytes (re-encoded, without metadata).';
comment on column app.product_photos.width is 'The original''s width in pixels (after its EXIF orientation was applied).';
comment on column app.product_photos.height is 'The original''s height in pixels.';
comment on column app.product_photos.placeholder is 'The photo''s average colour (#rrggbb): what a frontend paints before the image arrives.';
comment on column app.product_photos.variants is
  'Smaller WebP copies made by the worker (media.make_variants): [{path, width, height}], narrowest first; empty until made, and for a photo no wider than the narrowest width.';

alter table app.users
  add column photo_width integer check (photo_width > 0),
  add column photo_height integer check (photo_height > 0),
  add column photo_size_bytes integer check (photo_size_bytes > 0),
  add column photo_placeholder text check (photo_placeholder ~ '^#[0-9a-f]{6}$'),
  add column photo_variants jsonb not null default '[]' check (jsonb_typeof(photo_variants) = 'array');
comment on column app.users.photo_path is
  'Profile photo''s path in the media storage (as app.product_photos.path); served under MEDIA_URL. Public.';
comment on column app.users.photo_width is 'The profile photo''s width in pixels. Public.';
comment on column app.users.photo_height is 'The profile photo''s height in pixels. Public.';
comment on column app.users.photo_size_bytes is 'The stored profile photo''s size in bytes. Public.';
comment on column app.users.photo_placeholder is 'The profile photo''s average colour (#rrggbb). Public.';
comment on column app.users.photo_variants is 'Smaller WebP copies of the profile photo, as app.product_photos.variants. Public.';
