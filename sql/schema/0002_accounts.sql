/*
 * 0002 accounts: users, their credentials, refresh tokens, login throttling, OAuth links.
 *
 * Why: the seed's User (UUID id, names, email, password hash, phone, role) plus what a
 * real product needs (photo, preferences, active flag, updated_at). Email is unique
 * regardless of letter case. The password hash and everything token-shaped live in
 * app_private, which no client role can reach: only SECURITY DEFINER functions in
 * sql/functions/10_accounts.sql touch them.
 */

create type app.user_role as enum ('guest', 'host', 'admin');
comment on type app.user_role is 'What a user may do: guest (book), host (list and book), admin (manage everything).';

create table app.users (
  id uuid primary key default gen_random_uuid(),
  email text not null check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' and length(email) <= 254),
  first_name text not null check (length(btrim(first_name)) between 1 and 100),
  last_name text not null check (length(btrim(last_name)) between 1 and 100),
  phone_number text check (phone_number ~ '^\+?[0-9 ()-]{6,20}$'),
  role app.user_role not null default 'guest',
  photo_path text,
  preferences jsonb not null default '{}' check (jsonb_typeof(preferences) = 'object' and pg_column_size(preferences) <= 8192),
  is_active boolean not null default true,
  session_epoch integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index users_email_key on app.users (lower(email));
create index users_role_idx on app.users (role);
create index users_created_at_idx on app.users (created_at);

comment on table app.users is 'Everyone who signs in: guests, hosts and admins (the seed''s User). A user reads and edits only their own row; admins all.';
comment on column app.users.id is 'User id (the JWT "sub").';
comment on column app.users.email is 'Sign-in email; unique regardless of letter case (users_email_key on lower(email)). Private.';
comment on column app.users.first_name is 'First name; public (shown on listings the user hosts).';
comment on column app.users.last_name is 'Last name. Private.';
comment on column app.users.phone_number is 'Contact phone, optional. Private.';
comment on column app.users.role is 'guest, host or admin; set by registration (guest/host), become-host, or an admin. Never by the user directly.';
comment on column app.users.photo_path is 'Profile photo, relative to MEDIA_ROOT (a generated name; served under MEDIA_URL). Public.';
comment on column app.users.preferences is 'Free-form user preferences (a JSON object, at most 8 KiB), e.g. {"currency": "EUR", "language": "fr"}. Private.';
comment on column app.users.is_active is 'False once deactivated (by the user or an admin): cannot sign in, tokens stop working.';
comment on column app.users.session_epoch is 'Access tokens carry the epoch they were issued in (claim "sev"); bumping it (revoke-all, deactivation, role change) ends every session at once.';
comment on column app.users.created_at is 'When the account was created.';
comment on column app.users.updated_at is 'When the row last changed (maintained by trigger).';

create table app_private.credentials (
  user_id uuid primary key references app.users (id) on delete cascade,
  password_hash text,
  updated_at timestamptz not null default now()
);
comment on table app_private.credentials is 'Password hashes (bcrypt via pgcrypto, cost 11). Null hash: the account signs in only through OAuth.';
comment on column app_private.credentials.user_id is 'The user.';
comment on column app_private.credentials.password_hash is 'bcrypt hash of the password (passwords over 72 bytes are refused, never truncated).';
comment on column app_private.credentials.updated_at is 'When the password last changed.';

create table app_private.refresh_tokens (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references app.users (id) on delete cascade,
  family_id uuid not null,
  token_hash bytea not null unique,
  issued_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz,
  revoked_at timestamptz
);
create index refresh_tokens_family_idx on app_private.refresh_tokens (family_id);
create index refresh_tokens_user_idx on app_private.refresh_tokens (user_id) where revoked_at is null;
comment on table app_private.refresh_tokens is 'Opaque refresh tokens, stored only as SHA-256 hashes. Each use rotates it (used_at set, a successor issued in the same family); presenting a used token again revokes the whole family.';
comment on column app_private.refresh_tokens.id is 'Token id.';
comment on column app_private.refresh_tokens.user_id is 'Whose session.';
comment on column app_private.refresh_tokens.family_id is 'One sign-in session: every rotation stays in the family.';
comment on column app_private.refresh_tokens.token_hash is 'sha256 of the token string; the token itself is never stored.';
comment on column app_private.refresh_tokens.issued_at is 'When issued.';
comment on column app_private.refresh_tokens.expires_at is 'When it stops working.';
comment on column app_private.refresh_tokens.used_at is 'When it was exchanged for a successor (rotation); a second use is reuse.';
comment on column app_private.refresh_tokens.revoked_at is 'When revoked (logout, reuse detected, revoke-all, deactivation).';

create table app_private.login_attempts (
  id bigint generated always as identity primary key,
  email text not null,
  client_addr inet,
  succeeded boolean not null,
  attempted_at timestamptz not null default now()
);
create index login_attempts_email_idx on app_private.login_attempts (lower(email), attempted_at);
create index login_attempts_addr_idx on app_private.login_attempts (client_addr, attempted_at);
comment on table app_private.login_attempts is 'Every password sign-in attempt; failures in a window throttle further attempts for that email or client address.';
comment on column app_private.login_attempts.id is 'Attempt id.';
comment on column app_private.login_attempts.email is 'The email tried (as typed).';
comment on column app_private.login_attempts.client_addr is 'The client address, when the API knows it.';
comment on column app_private.login_attempts.succeeded is 'Whether the attempt signed in.';
comment on column app_private.login_attempts.attempted_at is 'When.';

create table app_private.oauth_identities (
  provider text not null,
  subject text not null,
  user_id uuid not null references app.users (id) on delete cascade,
  email text,
  created_at timestamptz not null default now(),
  primary key (provider, subject)
);
create index oauth_identities_user_idx on app_private.oauth_identities (user_id);
comment on table app_private.oauth_identities is 'A user''s accounts at OAuth/OIDC providers (google, facebook), linked by the provider''s subject id.';
comment on column app_private.oauth_identities.provider is 'Provider name as configured (google, facebook).';
comment on column app_private.oauth_identities.subject is 'The provider''s stable user id (OIDC "sub", Facebook "id").';
comment on column app_private.oauth_identities.user_id is 'Our user.';
comment on column app_private.oauth_identities.email is 'The email the provider reported at link time.';
comment on column app_private.oauth_identities.created_at is 'When linked.';

create table app_private.oauth_states (
  state text primary key,
  provider text not null,
  code_verifier text not null,
  redirect_uri text not null,
  created_at timestamptz not null default now()
);
comment on table app_private.oauth_states is 'Pending OAuth authorization requests: the state value and its PKCE verifier, single use, valid for 10 minutes.';
comment on column app_private.oauth_states.state is 'The random state sent to the provider and expected back.';
comment on column app_private.oauth_states.provider is 'Which provider the flow is with.';
comment on column app_private.oauth_states.code_verifier is 'PKCE code verifier (S256 challenge sent to the provider).';
comment on column app_private.oauth_states.redirect_uri is 'The callback URI used, sent again on code exchange.';
comment on column app_private.oauth_states.created_at is 'When the flow started.';

alter table app.users enable row level security, force row level security;
alter table app_private.credentials enable row level security, force row level security;
alter table app_private.refresh_tokens enable row level security, force row level security;
alter table app_private.login_attempts enable row level security, force row level security;
alter table app_private.oauth_identities enable row level security, force row level security;
alter table app_private.oauth_states enable row level security, force row level security;
grant usage on type app.user_role to anon, guest, host, admin;
