"""Load demo data into the configured database, once: `python -m api.demo` (make run does it).

Demo accounts are printed at the end. Everything is inserted as the owner, the way a
DBA would seed a database; running it again changes nothing.
"""

from __future__ import annotations

import psycopg

from api.settings import settings

ACCOUNTS = (
    ("admin@nexus.local", "nexus-admin-pass", "Ada", "Admin", "admin"),
    ("host@nexus.local", "nexus-host-pass", "Chinedu", "Okafor", "host"),
    ("host2@nexus.local", "nexus-host-pass", "Wanjiru", "Kamau", "host"),
    ("guest@nexus.local", "nexus-guest-pass", "Amara", "Mensah", "guest"),
)

SEED = """
insert into app.users (email, first_name, last_name, role)
select e, f, l, r::app.user_role from (values {accounts}) a(e, f, l, r)
on conflict (lower(email)) do nothing;

insert into app_private.credentials (user_id, password_hash)
select u.id, app_private.hash_password(a.p)
from (values {passwords}) a(e, p) join app.users u on lower(u.email) = a.e
on conflict (user_id) do nothing;

insert into app.categories (name, slug, description) values
  ('Apartment', 'apartment', 'Flats and apartments in the city'),
  ('House', 'house', 'Whole houses'),
  ('Villa', 'villa', 'Villas, often with a pool'),
  ('Cabin', 'cabin', 'Cabins and lodges'),
  ('Electronics', 'electronics', 'Workspaces with the gear: monitors, laptops, studio equipment')
on conflict do nothing;

with host as (select id from app.users where email = 'host@nexus.local'),
     host2 as (select id from app.users where email = 'host2@nexus.local'),
     listing(host_email, category, name, description, location, price, currency, guests, policy, amenities) as (values
  ('host@nexus.local', 'apartment', 'Lekki Phase 1 studio with ocean breeze',
   'A bright studio five minutes from the beach, fast Wi-Fi and a backup generator.',
   'Lekki, Lagos, Nigeria', 85.00, 'USD', 2, 'flexible', '{wifi,generator,air_conditioning,kitchen}'::text[]),
  ('host@nexus.local', 'villa', 'Ikoyi villa with pool',
   'Four bedrooms, private pool, 24h security and parking for three cars.',
   'Ikoyi, Lagos, Nigeria', 420.00, 'USD', 8, 'strict', '{wifi,pool,parking,security,kitchen}'::text[]),
  ('host@nexus.local', 'electronics', 'Creator studio with laptop and cameras',
   'A quiet studio flat with a laptop workstation, two monitors and lighting kit.',
   'Yaba, Lagos, Nigeria', 60.00, 'USD', 2, 'moderate', '{wifi,workspace,air_conditioning}'::text[]),
  ('host2@nexus.local', 'house', 'Westlands family house',
   'Three bedrooms near the malls, garden, pet friendly.',
   'Westlands, Nairobi, Kenya', 120.00, 'USD', 6, 'moderate', '{wifi,pet_friendly,parking,kitchen,washer}'::text[]),
  ('host2@nexus.local', 'cabin', 'Naivasha lakeside cabin',
   'A wooden cabin by the lake with a fireplace and hot tub.',
   'Naivasha, Nakuru, Kenya', 95.00, 'KES', 4, 'flexible', '{hot_tub,parking,heating}'::text[])
)
insert into app.products (host_id, category_id, name, description, location, price_per_night, currency,
                          max_guests, cancellation_policy)
select u.id, c.id, l.name, l.description, l.location, l.price, l.currency, l.guests,
       l.policy::app.cancellation_policy
from listing l
join app.users u on u.email = l.host_email
join app.categories c on c.slug = l.category
where not exists (select from app.products p where p.name = l.name);

insert into app.product_amenities (product_id, amenity)
select p.id, a
from app.products p
join (values
  ('Lekki Phase 1 studio with ocean breeze', '{wifi,generator,air_conditioning,kitchen}'::text[]),
  ('Ikoyi villa with pool', '{wifi,pool,parking,security,kitchen}'::text[]),
  ('Creator studio with laptop and cameras', '{wifi,workspace,air_conditioning}'::text[]),
  ('Westlands family house', '{wifi,pet_friendly,parking,kitchen,washer}'::text[]),
  ('Naivasha lakeside cabin', '{hot_tub,parking,heating}'::text[])) d(name, amenities) on d.name = p.name
cross join unnest(d.amenities) a
on conflict do nothing;

-- Where each one is: the exact point and address (private; a trigger draws the public point).
insert into app.product_addresses (product_id, latitude, longitude, address)
select p.id, d.lat, d.lng, d.address
from app.products p
join (values
  ('Lekki Phase 1 studio with ocean breeze', 6.4474, 3.4730, '14 Admiralty Way, Lekki Phase 1'),
  ('Ikoyi villa with pool', 6.4520, 3.4350, '3 Bourdillon Road, Ikoyi'),
  ('Creator studio with laptop and cameras', 6.5095, 3.3711, '22 Herbert Macaulay Way, Yaba'),
  ('Westlands family house', -1.2676, 36.8108, '7 Mpaka Road, Westlands'),
  ('Naivasha lakeside cabin', -0.7717, 36.3656, 'Moi South Lake Road, Naivasha')) d(name, lat, lng, address)
  on d.name = p.name
on conflict do nothing;
"""


def main() -> None:
    accounts = ", ".join(f"('{e}', '{first}', '{last}', '{r}')" for e, _, first, last, r in ACCOUNTS)
    passwords = ", ".join(f"('{e}', '{p}')" for e, p, *_ in ACCOUNTS)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(SEED.replace("{accounts}", accounts).replace("{passwords}", passwords).encode())
    print("demo accounts (email / password / role):")
    for email, password, _, _, role in ACCOUNTS:
        print(f"  {email:<20} {password:<18} {role}")


if __name__ == "__main__":
    main()
