/*
 * bench/data.sql: the benchmark data set (issue 4), loaded by bench/data.py into `nexus_bench`.
 *
 * Why: the catalog's query plans only mean something on a realistic volume. This builds
 * 10,000 users (2,000 hosts, 7,990 guests, 10 admins), 20 categories, 100,000 listings
 * spread over ~200 "Area, City, Country" locations (African cities prominent), prices
 * 10-1000 skewed towards the cheap end, mostly USD, 1-16 guests, 0-8 amenities each,
 * 0-5 photo rows each, ratings on ~70% of them, and exactly 95% published.
 *
 * Guarantees: deterministic. setseed() fixes random() for this session, every statement is
 * set-based (generate_series, no row-by-row loops) and ordered, and ids are derived from
 * the row number, so the same file gives the same rows, ids included:
 *   user i     id = md5('user:' || i)::uuid       i in 1..10000 (1..2000 hosts, 2001..2010 admins)
 *   product i  id = md5('product:' || i)::uuid    i in 1..100000; unpublished iff i % 20 = 0
 * The benchmark relies on the last line: pgbench picks a published listing with integer
 * arithmetic (bench/run.py).
 *
 * Runs as the owner (RLS is forced, the all_as_owner policy lets it write). Steps are
 * separated by "-- step:" lines; bench/data.py times each one.
 */

-- step: seed and word lists
select setseed(0.4242);
create temporary table w_first (n int, v text);
insert into w_first
select row_number() over (), v from unnest(array[
  'Adaeze', 'Chinedu', 'Ngozi', 'Emeka', 'Funmilayo', 'Tunde', 'Amaka', 'Kelechi', 'Yetunde', 'Ifeanyi',
  'Wanjiru', 'Kamau', 'Achieng', 'Otieno', 'Njeri', 'Mwangi', 'Akosua', 'Kwame', 'Abena', 'Kofi',
  'Thabo', 'Lerato', 'Sipho', 'Naledi', 'Zanele', 'Amina', 'Fatima', 'Youssef', 'Omar', 'Salma',
  'Aisha', 'Moussa', 'Aminata', 'Mamadou', 'Fatou', 'Tendai', 'Rudo', 'Tesfaye', 'Hana', 'Abebe',
  'Grace', 'John', 'Mary', 'David', 'Sarah', 'James', 'Emma', 'Daniel', 'Olivia', 'Lucas',
  'Sofia', 'Mateo', 'Camille', 'Louis', 'Lena', 'Jonas', 'Yuki', 'Hiro', 'Priya', 'Arjun'
]) v;
create temporary table w_last (n int, v text);
insert into w_last
select row_number() over (), v from unnest(array[
  'Okafor', 'Adeyemi', 'Balogun', 'Nwosu', 'Eze', 'Okonkwo', 'Ogunleye', 'Kariuki', 'Odhiambo', 'Mutua',
  'Njoroge', 'Mensah', 'Asante', 'Boateng', 'Owusu', 'Nkosi', 'Dlamini', 'Mokoena', 'Ndlovu', 'Khumalo',
  'El Amrani', 'Benali', 'Haddad', 'Diallo', 'Ndiaye', 'Traore', 'Keita', 'Moyo', 'Banda', 'Phiri',
  'Bekele', 'Tadesse', 'Uwimana', 'Mugisha', 'Smith', 'Johnson', 'Brown', 'Garcia', 'Martin', 'Silva',
  'Santos', 'Dubois', 'Muller', 'Rossi', 'Tanaka', 'Sato', 'Patel', 'Sharma', 'Kim', 'Nguyen'
]) v;

create temporary table w_locations (n int, v text, weight float8);
insert into w_locations
select row_number() over (), v,
       -- Africa is the marketplace's home: its locations are drawn about 3x as often.
       case when v ~ '(Nigeria|Kenya|Ghana|South Africa|Egypt|Morocco|Rwanda|Uganda|Tanzania|Ethiopia|Senegal|Ivory Coast|Zambia|Zimbabwe|Namibia|Botswana|Tunisia|Togo|Benin|Sierra Leone|Mozambique|Mauritius|Cameroon|Malawi)$'
            then 3.0 else 1.0 end
from unnest(array[
  'Lekki, Lagos, Nigeria', 'Victoria Island, Lagos, Nigeria', 'Ikoyi, Lagos, Nigeria', 'Ikeja, Lagos, Nigeria',
  'Yaba, Lagos, Nigeria', 'Surulere, Lagos, Nigeria', 'Ajah, Lagos, Nigeria', 'Gbagada, Lagos, Nigeria',
  'Maitama, Abuja, Nigeria', 'Wuse II, Abuja, Nigeria', 'Asokoro, Abuja, Nigeria', 'Garki, Abuja, Nigeria',
  'Jabi, Abuja, Nigeria', 'GRA, Port Harcourt, Nigeria', 'Trans Amadi, Port Harcourt, Nigeria', 'Bodija, Ibadan, Nigeria',
  'GRA, Enugu, Nigeria', 'Independence Layout, Enugu, Nigeria', 'GRA, Benin City, Nigeria', 'Barnawa, Kaduna, Nigeria',
  'Westlands, Nairobi, Kenya', 'Kilimani, Nairobi, Kenya', 'Karen, Nairobi, Kenya', 'Lavington, Nairobi, Kenya',
  'Kileleshwa, Nairobi, Kenya', 'Runda, Nairobi, Kenya', 'Parklands, Nairobi, Kenya', 'Upper Hill, Nairobi, Kenya',
  'Nyali, Mombasa, Kenya', 'Diani Beach, Kwale, Kenya', 'Milimani, Kisumu, Kenya', 'Lake Naivasha, Naivasha, Kenya',
  'Malindi Town, Malindi, Kenya', 'Nanyuki Town, Nanyuki, Kenya',
  'East Legon, Accra, Ghana', 'Osu, Accra, Ghana', 'Cantonments, Accra, Ghana', 'Airport Residential, Accra, Ghana',
  'Labone, Accra, Ghana', 'Tesano, Accra, Ghana', 'Ahodwo, Kumasi, Ghana', 'Nhyiaeso, Kumasi, Ghana',
  'Busua Beach, Takoradi, Ghana', 'Kokrobite, Accra, Ghana',
  'Sandton, Johannesburg, South Africa', 'Rosebank, Johannesburg, South Africa', 'Melville, Johannesburg, South Africa',
  'Maboneng, Johannesburg, South Africa', 'Sea Point, Cape Town, South Africa', 'Camps Bay, Cape Town, South Africa',
  'Green Point, Cape Town, South Africa', 'Gardens, Cape Town, South Africa', 'Woodstock, Cape Town, South Africa',
  'Constantia, Cape Town, South Africa', 'Umhlanga, Durban, South Africa', 'Morningside, Durban, South Africa',
  'Hatfield, Pretoria, South Africa', 'Stellenbosch Central, Stellenbosch, South Africa', 'Knysna Heads, Knysna, South Africa',
  'Zamalek, Cairo, Egypt', 'Maadi, Cairo, Egypt', 'Heliopolis, Cairo, Egypt', 'Garden City, Cairo, Egypt',
  'New Cairo, Cairo, Egypt', 'Stanley, Alexandria, Egypt', 'Naama Bay, Sharm El Sheikh, Egypt', 'El Gouna, Hurghada, Egypt',
  'West Bank, Luxor, Egypt',
  'Gueliz, Marrakech, Morocco', 'Medina, Marrakech, Morocco', 'Hivernage, Marrakech, Morocco', 'Palmeraie, Marrakech, Morocco',
  'Maarif, Casablanca, Morocco', 'Anfa, Casablanca, Morocco', 'Medina, Fes, Morocco', 'Agdal, Rabat, Morocco',
  'Taghazout Bay, Agadir, Morocco', 'Medina, Essaouira, Morocco', 'Medina, Chefchaouen, Morocco',
  'Kiyovu, Kigali, Rwanda', 'Kimihurura, Kigali, Rwanda', 'Nyarutarama, Kigali, Rwanda', 'Kacyiru, Kigali, Rwanda',
  'Lake Kivu, Gisenyi, Rwanda',
  'Kololo, Kampala, Uganda', 'Muyenga, Kampala, Uganda', 'Ntinda, Kampala, Uganda', 'Naguru, Kampala, Uganda',
  'Entebbe Town, Entebbe, Uganda', 'Bujagali, Jinja, Uganda',
  'Masaki, Dar es Salaam, Tanzania', 'Oyster Bay, Dar es Salaam, Tanzania', 'Mikocheni, Dar es Salaam, Tanzania',
  'Stone Town, Zanzibar, Tanzania', 'Nungwi, Zanzibar, Tanzania', 'Paje, Zanzibar, Tanzania', 'Njiro, Arusha, Tanzania',
  'Bole, Addis Ababa, Ethiopia', 'Kazanchis, Addis Ababa, Ethiopia', 'Old Airport, Addis Ababa, Ethiopia',
  'Lake Tana, Bahir Dar, Ethiopia',
  'Almadies, Dakar, Senegal', 'Plateau, Dakar, Senegal', 'Mermoz, Dakar, Senegal', 'Ngor, Dakar, Senegal',
  'Saly Portudal, Mbour, Senegal',
  'Cocody, Abidjan, Ivory Coast', 'Plateau, Abidjan, Ivory Coast', 'Marcory, Abidjan, Ivory Coast', 'Assinie, Abidjan, Ivory Coast',
  'Kabulonga, Lusaka, Zambia', 'Livingstone Town, Livingstone, Zambia', 'Borrowdale, Harare, Zimbabwe',
  'Avondale, Harare, Zimbabwe', 'Victoria Falls Town, Victoria Falls, Zimbabwe', 'Klein Windhoek, Windhoek, Namibia',
  'Swakopmund Central, Swakopmund, Namibia', 'Phakalane, Gaborone, Botswana', 'Maun Village, Maun, Botswana',
  'La Marsa, Tunis, Tunisia', 'Sidi Bou Said, Tunis, Tunisia', 'Hammamet Nord, Hammamet, Tunisia',
  'Tokoin, Lome, Togo', 'Haie Vive, Cotonou, Benin', 'Lumley, Freetown, Sierra Leone', 'Sommerschield, Maputo, Mozambique',
  'Tofo Beach, Inhambane, Mozambique', 'Grand Baie, Riviere du Rempart, Mauritius', 'Flic en Flac, Black River, Mauritius',
  'Bonapriso, Douala, Cameroon', 'Bastos, Yaounde, Cameroon', 'Area 10, Lilongwe, Malawi', 'Cape Maclear, Mangochi, Malawi',
  'Shoreditch, London, United Kingdom', 'Camden, London, United Kingdom', 'Notting Hill, London, United Kingdom',
  'Brixton, London, United Kingdom', 'Northern Quarter, Manchester, United Kingdom', 'Old Town, Edinburgh, United Kingdom',
  'Le Marais, Paris, France', 'Montmartre, Paris, France', 'Saint-Germain, Paris, France', 'Vieux Port, Marseille, France',
  'Vieux Lyon, Lyon, France', 'Old Town, Nice, France',
  'Alfama, Lisbon, Portugal', 'Baixa, Lisbon, Portugal', 'Principe Real, Lisbon, Portugal', 'Ribeira, Porto, Portugal',
  'Lagos Old Town, Lagos, Portugal',
  'Gracia, Barcelona, Spain', 'El Born, Barcelona, Spain', 'Malasana, Madrid, Spain', 'Triana, Seville, Spain',
  'Kreuzberg, Berlin, Germany', 'Mitte, Berlin, Germany', 'Prenzlauer Berg, Berlin, Germany', 'Schwabing, Munich, Germany',
  'Jordaan, Amsterdam, Netherlands', 'De Pijp, Amsterdam, Netherlands', 'Trastevere, Rome, Italy', 'Monti, Rome, Italy',
  'Navigli, Milan, Italy', 'Oltrarno, Florence, Italy', 'Plaka, Athens, Greece', 'Oia, Santorini, Greece',
  'Brooklyn, New York, United States', 'Harlem, New York, United States', 'SoHo, New York, United States',
  'South Beach, Miami, United States', 'Wynwood, Miami, United States', 'Venice, Los Angeles, United States',
  'Silver Lake, Los Angeles, United States', 'Mission District, San Francisco, United States',
  'Capitol Hill, Seattle, United States', 'East Austin, Austin, United States', 'French Quarter, New Orleans, United States',
  'Midtown, Atlanta, United States', 'Wicker Park, Chicago, United States',
  'Kensington Market, Toronto, Canada', 'Plateau Mont-Royal, Montreal, Canada', 'Kitsilano, Vancouver, Canada',
  'Roma Norte, Mexico City, Mexico', 'Condesa, Mexico City, Mexico', 'Zona Hotelera, Cancun, Mexico', 'Centro, Tulum, Mexico',
  'Ipanema, Rio de Janeiro, Brazil', 'Copacabana, Rio de Janeiro, Brazil', 'Vila Madalena, Sao Paulo, Brazil',
  'Palermo, Buenos Aires, Argentina', 'San Telmo, Buenos Aires, Argentina', 'Miraflores, Lima, Peru',
  'El Poblado, Medellin, Colombia', 'Getsemani, Cartagena, Colombia',
  'Dubai Marina, Dubai, United Arab Emirates', 'Downtown, Dubai, United Arab Emirates', 'Jumeirah, Dubai, United Arab Emirates',
  'Canggu, Bali, Indonesia', 'Ubud, Bali, Indonesia', 'Seminyak, Bali, Indonesia', 'Sukhumvit, Bangkok, Thailand',
  'Old City, Chiang Mai, Thailand', 'Patong, Phuket, Thailand', 'Shibuya, Tokyo, Japan', 'Shinjuku, Tokyo, Japan',
  'Gion, Kyoto, Japan', 'Hongdae, Seoul, South Korea', 'Bandra, Mumbai, India', 'Anjuna, Goa, India',
  'Tiong Bahru, Singapore, Singapore', 'Surry Hills, Sydney, Australia', 'Bondi, Sydney, Australia',
  'Fitzroy, Melbourne, Australia', 'Ponsonby, Auckland, New Zealand'
]) v;

create temporary table w_categories (n int, name text, slug text, share float8);
insert into w_categories (n, name, slug, share) values
  (1, 'Apartment', 'apartment', 16), (2, 'House', 'house', 11), (3, 'Villa', 'villa', 6),
  (4, 'Cabin', 'cabin', 4), (5, 'Cottage', 'cottage', 4), (6, 'Loft', 'loft', 4), (7, 'Studio', 'studio', 8),
  (8, 'Guesthouse', 'guesthouse', 5), (9, 'Beach house', 'beach-house', 4), (10, 'Treehouse', 'treehouse', 1.5),
  (11, 'Boutique hotel', 'boutique-hotel', 4), (12, 'Farm stay', 'farm-stay', 2), (13, 'Tiny home', 'tiny-home', 2),
  (14, 'Penthouse', 'penthouse', 3), (15, 'Serviced apartment', 'serviced-apartment', 8),
  (16, 'Event space', 'event-space', 3), (17, 'Office and coworking', 'office-and-coworking', 3.5),
  (18, 'Camping and glamping', 'camping-and-glamping', 2), (19, 'Boat', 'boat', 1),
  (20, 'Electronics', 'electronics', 5);
-- Cumulative shares, so a uniform draw picks a category by its weight.
create temporary table w_category_cdf as
select n, slug, name, sum(share) over (order by n) / sum(share) over () as upto from w_categories;
create temporary table w_location_cdf as
select n, v, sum(weight) over (order by n) / sum(weight) over () as upto from w_locations;

-- Where each city is (its centre, WGS 84): a listing lies in its area, an area within ~5 km of the
-- centre, both placed by hashes (md5), not random(), so the draws above and below are unchanged.
create temporary table w_cities (city text, country text, lat float8, lng float8);
insert into w_cities values
  ('Lagos', 'Nigeria', 6.4550, 3.3841), ('Abuja', 'Nigeria', 9.0579, 7.4951), ('Port Harcourt', 'Nigeria', 4.8156, 7.0498), ('Ibadan', 'Nigeria', 7.3775, 3.9470),
  ('Enugu', 'Nigeria', 6.4584, 7.5464), ('Benin City', 'Nigeria', 6.3350, 5.6037), ('Kaduna', 'Nigeria', 10.5105, 7.4165), ('Nairobi', 'Kenya', -1.2864, 36.8172),
  ('Mombasa', 'Kenya', -4.0435, 39.6682), ('Kwale', 'Kenya', -4.3167, 39.5667), ('Kisumu', 'Kenya', -0.0917, 34.7680), ('Naivasha', 'Kenya', -0.7167, 36.4333),
  ('Malindi', 'Kenya', -3.2192, 40.1169), ('Nanyuki', 'Kenya', 0.0167, 37.0667), ('Accra', 'Ghana', 5.6037, -0.1870), ('Kumasi', 'Ghana', 6.6885, -1.6244),
  ('Takoradi', 'Ghana', 4.8845, -1.7554), ('Johannesburg', 'South Africa', -26.2041, 28.0473), ('Cape Town', 'South Africa', -33.9249, 18.4241), ('Durban', 'South Africa', -29.8587, 31.0218),
  ('Pretoria', 'South Africa', -25.7479, 28.2293), ('Stellenbosch', 'South Africa', -33.9321, 18.8602), ('Knysna', 'South Africa', -34.0363, 23.0471), ('Cairo', 'Egypt', 30.0444, 31.2357),
  ('Alexandria', 'Egypt', 31.2001, 29.9187), ('Sharm El Sheikh', 'Egypt', 27.9158, 34.3299), ('Hurghada', 'Egypt', 27.2579, 33.8116), ('Luxor', 'Egypt', 25.6872, 32.6396),
  ('Marrakech', 'Morocco', 31.6295, -7.9811), ('Casablanca', 'Morocco', 33.5731, -7.5898), ('Fes', 'Morocco', 34.0181, -5.0078), ('Rabat', 'Morocco', 34.0209, -6.8416),
  ('Agadir', 'Morocco', 30.4278, -9.5981), ('Essaouira', 'Morocco', 31.5085, -9.7595), ('Chefchaouen', 'Morocco', 35.1688, -5.2636), ('Kigali', 'Rwanda', -1.9441, 30.0619),
  ('Gisenyi', 'Rwanda', -1.7028, 29.2564), ('Kampala', 'Uganda', 0.3476, 32.5825), ('Entebbe', 'Uganda', 0.0512, 32.4637), ('Jinja', 'Uganda', 0.4244, 33.2041),
  ('Dar es Salaam', 'Tanzania', -6.7924, 39.2083), ('Zanzibar', 'Tanzania', -6.1659, 39.2026), ('Arusha', 'Tanzania', -3.3869, 36.6830), ('Addis Ababa', 'Ethiopia', 9.0054, 38.7636),
  ('Bahir Dar', 'Ethiopia', 11.5742, 37.3614), ('Dakar', 'Senegal', 14.7167, -17.4677), ('Mbour', 'Senegal', 14.4167, -16.9667), ('Abidjan', 'Ivory Coast', 5.3600, -4.0083),
  ('Lusaka', 'Zambia', -15.3875, 28.3228), ('Livingstone', 'Zambia', -17.8419, 25.8543), ('Harare', 'Zimbabwe', -17.8252, 31.0335), ('Victoria Falls', 'Zimbabwe', -17.9243, 25.8572),
  ('Windhoek', 'Namibia', -22.5609, 17.0658), ('Swakopmund', 'Namibia', -22.6784, 14.5258), ('Gaborone', 'Botswana', -24.6282, 25.9231), ('Maun', 'Botswana', -19.9833, 23.4167),
  ('Tunis', 'Tunisia', 36.8065, 10.1815), ('Hammamet', 'Tunisia', 36.4000, 10.6167), ('Lome', 'Togo', 6.1375, 1.2123), ('Cotonou', 'Benin', 6.3703, 2.3912),
  ('Freetown', 'Sierra Leone', 8.4657, -13.2317), ('Maputo', 'Mozambique', -25.9692, 32.5732), ('Inhambane', 'Mozambique', -23.8650, 35.3833), ('Riviere du Rempart', 'Mauritius', -20.0130, 57.5800),
  ('Black River', 'Mauritius', -20.2740, 57.3710), ('Douala', 'Cameroon', 4.0511, 9.7679), ('Yaounde', 'Cameroon', 3.8480, 11.5021), ('Lilongwe', 'Malawi', -13.9626, 33.7741),
  ('Mangochi', 'Malawi', -14.0200, 34.8400), ('London', 'United Kingdom', 51.5074, -0.1278), ('Manchester', 'United Kingdom', 53.4808, -2.2426), ('Edinburgh', 'United Kingdom', 55.9533, -3.1883),
  ('Paris', 'France', 48.8566, 2.3522), ('Marseille', 'France', 43.2965, 5.3698), ('Lyon', 'France', 45.7640, 4.8357), ('Nice', 'France', 43.7102, 7.2620),
  ('Lisbon', 'Portugal', 38.7223, -9.1393), ('Porto', 'Portugal', 41.1579, -8.6291), ('Lagos', 'Portugal', 37.1028, -8.6730), ('Barcelona', 'Spain', 41.3851, 2.1734),
  ('Madrid', 'Spain', 40.4168, -3.7038), ('Seville', 'Spain', 37.3891, -5.9845), ('Berlin', 'Germany', 52.5200, 13.4050), ('Munich', 'Germany', 48.1351, 11.5820),
  ('Amsterdam', 'Netherlands', 52.3676, 4.9041), ('Rome', 'Italy', 41.9028, 12.4964), ('Milan', 'Italy', 45.4642, 9.1900), ('Florence', 'Italy', 43.7696, 11.2558),
  ('Athens', 'Greece', 37.9838, 23.7275), ('Santorini', 'Greece', 36.3932, 25.4615), ('New York', 'United States', 40.7128, -74.0060), ('Miami', 'United States', 25.7617, -80.1918),
  ('Los Angeles', 'United States', 34.0522, -118.2437), ('San Francisco', 'United States', 37.7749, -122.4194), ('Seattle', 'United States', 47.6062, -122.3321), ('Austin', 'United States', 30.2672, -97.7431),
  ('New Orleans', 'United States', 29.9511, -90.0715), ('Atlanta', 'United States', 33.7490, -84.3880), ('Chicago', 'United States', 41.8781, -87.6298), ('Toronto', 'Canada', 43.6532, -79.3832),
  ('Montreal', 'Canada', 45.5017, -73.5673), ('Vancouver', 'Canada', 49.2827, -123.1207), ('Mexico City', 'Mexico', 19.4326, -99.1332), ('Cancun', 'Mexico', 21.1619, -86.8515),
  ('Tulum', 'Mexico', 20.2114, -87.4654), ('Rio de Janeiro', 'Brazil', -22.9068, -43.1729), ('Sao Paulo', 'Brazil', -23.5505, -46.6333), ('Buenos Aires', 'Argentina', -34.6037, -58.3816),
  ('Lima', 'Peru', -12.0464, -77.0428), ('Medellin', 'Colombia', 6.2476, -75.5658), ('Cartagena', 'Colombia', 10.3910, -75.4794), ('Dubai', 'United Arab Emirates', 25.2048, 55.2708),
  ('Bali', 'Indonesia', -8.6500, 115.2167), ('Bangkok', 'Thailand', 13.7563, 100.5018), ('Chiang Mai', 'Thailand', 18.7883, 98.9853), ('Phuket', 'Thailand', 7.8804, 98.3923),
  ('Tokyo', 'Japan', 35.6762, 139.6503), ('Kyoto', 'Japan', 35.0116, 135.7681), ('Seoul', 'South Korea', 37.5665, 126.9780), ('Mumbai', 'India', 19.0760, 72.8777),
  ('Goa', 'India', 15.2993, 74.1240), ('Singapore', 'Singapore', 1.3521, 103.8198), ('Sydney', 'Australia', -33.8688, 151.2093), ('Melbourne', 'Australia', -37.8136, 144.9631),
  ('Auckland', 'New Zealand', -36.8485, 174.7633);

create temporary table w_adjective (n int, v text);
insert into w_adjective
select row_number() over (), v from unnest(array[
  'Bright', 'Cosy', 'Spacious', 'Modern', 'Charming', 'Quiet', 'Stylish', 'Airy', 'Elegant', 'Rustic',
  'Sunny', 'Serene', 'Chic', 'Breezy', 'Luxurious', 'Minimalist', 'Colourful', 'Leafy', 'Secluded', 'Central'
]) v;
create temporary table w_electronics (n int, v text);
insert into w_electronics
select row_number() over (), v from unnest(array[
  'MacBook Pro 14 laptop', 'MacBook Air M2 laptop', 'Dell XPS 13 laptop', 'Lenovo ThinkPad X1 laptop',
  'HP Spectre x360 laptop', 'ASUS ROG gaming laptop', 'Razer Blade gaming laptop', 'Microsoft Surface Laptop 5',
  'Sony A7 IV camera kit', 'Canon EOS R6 camera', 'Fujifilm X-T5 camera', 'GoPro HERO12 action camera',
  'DJI Mini 4 Pro drone', 'DJI Ronin gimbal', 'PlayStation 5 console', 'Xbox Series X console',
  'Nintendo Switch OLED', 'Epson 4K projector', 'JBL PartyBox speaker', 'Bose QuietComfort headphones',
  'iPad Pro 12.9 tablet', 'Samsung Galaxy Tab S9', 'Starlink satellite internet kit', 'Portable solar generator',
  'Pioneer DJ controller', 'Shure podcast microphone set', 'Oculus Quest 3 VR headset', 'LG 34 inch monitor'
]) v;
create temporary table w_sentences (n int, v text);
insert into w_sentences
select row_number() over (), v from unnest(array[
  'Wake up to natural light streaming through floor-to-ceiling windows.',
  'The neighbourhood is full of cafes, markets and places to eat within walking distance.',
  'Fast fibre Wi-Fi and a laptop-friendly workspace make it ideal for remote work.',
  'A fully equipped kitchen lets you cook with fresh produce from the local market.',
  'The backup generator keeps the lights and the internet on during power cuts.',
  'Relax on the private balcony with views over the city skyline.',
  'Our 24-hour security team and gated compound give you peace of mind.',
  'Perfect for families, with plenty of space for children to play.',
  'Minutes from the beach, with sunset views from the terrace.',
  'Secure parking is available on the premises at no extra cost.',
  'We are happy to arrange airport pickup and local tours on request.',
  'The bedroom has a king-size bed, blackout curtains and air conditioning.',
  'Enjoy a swim in the shared pool or unwind in the landscaped garden.',
  'Public transport, shopping malls and the business district are close by.',
  'Pets are welcome; there is a small fenced yard.',
  'Bring your laptop: there is a desk, an ergonomic chair and a second monitor.',
  'Fresh linen, towels and toiletries are provided for every stay.',
  'The host lives nearby and is available around the clock.',
  'Quiet hours start at 10 pm; parties and events are not allowed.',
  'A washer and an iron are available for longer stays.',
  'Smart TV with streaming apps and a sound bar in the living room.',
  'Hiking trails and nature walks start right outside the door.',
  'Self check-in with a keypad lock, any time after 2 pm.',
  'Breakfast with local coffee and fruit can be arranged for a small fee.'
]) v;
create temporary table w_gear_sentences (n int, v text);
insert into w_gear_sentences
select row_number() over (), v from unnest(array[
  'Rent it by the day for a shoot, a trip or a conference.',
  'Comes with the charger, a protective case and all the cables you need.',
  'Freshly serviced and tested before every rental.',
  'Ideal for content creators, students and remote workers travelling light.',
  'A laptop stand and wireless mouse can be added on request.',
  'Pick up from the host or have it delivered within the city.',
  'A refundable deposit is held until the item is returned in good condition.',
  'Battery life of a full working day on a single charge.',
  'Perfect for events, weddings and weekend getaways.',
  'Pre-installed with the latest software; your data is wiped after each rental.'
]) v;
create temporary table w_room (n int, v text);
insert into w_room
select row_number() over (), v from unnest(array[
  'studio', 'one-bedroom flat', 'two-bedroom apartment', 'three-bedroom house', 'garden cottage', 'loft',
  'penthouse', 'villa with pool', 'beach bungalow', 'guest suite', 'townhouse', 'cabin', 'farmhouse',
  'treehouse', 'room with a view', 'serviced suite'
]) v;

-- step: users
insert into app.users (id, email, first_name, last_name, phone_number, role, preferences, created_at, updated_at)
select md5('user:' || i)::uuid,
       'bench.user' || i || '@example.com',
       (select v from w_first where n = 1 + (i * 7919) % 60),
       (select v from w_last where n = 1 + (i * 104729) % 50),
       case when i % 3 = 0 then null else '+234 ' || lpad(((i * 7919) % 100000000)::text, 8, '0') end,
       (case when i <= 2000 then 'host' when i <= 2010 then 'admin' else 'guest' end)::app.user_role,
       case when i % 5 = 0 then '{"currency": "USD", "language": "en"}'::jsonb else '{}'::jsonb end,
       v_at, v_at
from (select i, timestamptz '2022-06-01 00:00:00+00' + (i * interval '97 minutes') as v_at
      from generate_series(1, 10000) i) s
order by i;

-- step: categories
insert into app.categories (id, name, slug, description, created_at, updated_at)
select md5('category:' || slug)::uuid, name, slug, 'Listings of type ' || lower(name) || '.',
       timestamptz '2022-06-01 00:00:00+00', timestamptz '2022-06-01 00:00:00+00'
from w_categories order by n;

-- step: products
create temporary table w_products as
select i,
       random() as r_category, random() as r_location, random() as r_host, random() as r_price,
       random() as r_guests, random() as r_currency, random() as r_name, random() as r_desc,
       random() as r_policy, random() as r_rating, random() as r_count, random() as r_time
from generate_series(1, 100000) i
order by i;
alter table w_products add primary key (i);

-- The exact point of each listing: its area's point (the city's centre moved up to ~5.5 km by a
-- hash of the area's name), then up to ~1.3 km from it (a hash of the listing's number).
create temporary table w_places as
select p.i, l.v as location,
       a.lat + 0.012 * sqrt(h.u) * cos(2 * pi() * h.w) as lat,
       a.lng + 0.012 * sqrt(h.u) * sin(2 * pi() * h.w) / cos(radians(a.lat)) as lng
from w_products p
cross join lateral (select v from w_location_cdf where upto >= p.r_location order by n limit 1) l
join w_cities c on c.city = split_part(l.v, ', ', 2) and c.country = split_part(l.v, ', ', 3)
cross join lateral (
  select c.lat + 0.1 * (('x' || substr(md5('area:' || l.v), 1, 8))::bit(32)::bigint / 4294967296.0 - 0.5) as lat,
         c.lng + 0.1 * (('x' || substr(md5('area:' || l.v), 9, 8))::bit(32)::bigint / 4294967296.0 - 0.5)
                 / cos(radians(c.lat)) as lng) a
cross join lateral (
  select ('x' || substr(md5('place:' || p.i), 1, 8))::bit(32)::bigint / 4294967296.0 as u,
         ('x' || substr(md5('place:' || p.i), 9, 8))::bit(32)::bigint / 4294967296.0 as w) h
order by p.i;
alter table w_places add primary key (i);

-- Each listing gets 0-8 amenities, drawn without replacement weighted by popularity
-- (Efraimidis-Spirakis: keep the n smallest -ln(u)/weight). Drawn here, right after w_products as
-- before (nothing between draws from random()), so that each listing's sorted slugs go on its row
-- (products.amenity_slugs) as it is inserted; their rows are inserted in the amenities step.
create temporary table w_amenities as
select i, slug
from (
  select p.i, a.slug, p.k,
         row_number() over (partition by p.i order by -ln(1 - random()) / a.weight, a.slug) as rank
  from (select i, floor(random() * 9)::int as k from generate_series(1, 100000) i order by i) p
  cross join (values ('wifi', 10.0), ('kitchen', 6.0), ('air_conditioning', 5.0), ('parking', 5.0), ('tv', 4.5),
                     ('washer', 3.0), ('workspace', 3.0), ('security', 3.0), ('generator', 2.5), ('pool', 2.0),
                     ('heating', 2.0), ('pet_friendly', 1.5), ('gym', 1.2), ('beach_access', 1.0),
                     ('hot_tub', 0.8)) a (slug, weight)
  where p.k > 0
  order by p.i, a.slug
) s
where rank <= k
order by i, slug;
create index on w_amenities (i);

insert into app.products (id, host_id, category_id, name, description, location, price_per_night, currency,
                          max_guests, cancellation_policy, published, rating_avg, rating_count, created_at, updated_at,
                          map_latitude, map_longitude, amenity_slugs)
select md5('product:' || p.i)::uuid,
       md5('user:' || (1 + floor(2000 * power(p.r_host, 1.6)))::int)::uuid,
       md5('category:' || c.slug)::uuid,
       case when c.slug = 'electronics'
            then (select v from w_electronics where n = 1 + floor(p.r_name * 28)::int)
                 || case when p.i % 3 = 0 then ' for rent' else '' end
            else (select v from w_adjective where n = 1 + floor(p.r_name * 20)::int) || ' '
                 || case when c.slug in ('apartment', 'house', 'serviced-apartment')
                         then (select v from w_room where n = 1 + (p.i * 31) % 16)
                         else lower(c.name) end || ' in '
                 || split_part(l.v, ', ', 1)
       end,
       case when c.slug = 'electronics'
            then (select string_agg(v, ' ' order by k)
                  from (select k, (select v from w_gear_sentences where n = 1 + (p.i * 13 + k * 7) % 10) as v
                        from generate_series(0, 2 + (p.i % 3)) k) s)
                 || ' Available in ' || split_part(l.v, ', ', 2) || '.'
            else (select string_agg(v, ' ' order by k)
                  from (select k, (select v from w_sentences where n = 1 + (p.i * 17 + k * 5) % 24) as v
                        from generate_series(0, 3 + (p.i % 4)) k) s)
       end,
       l.v,
       round((10 + 990 * power(p.r_price, 2.2))::numeric, 0) + case when p.i % 4 = 0 then 0.99 else 0 end,
       case when p.r_currency < 0.85 then 'USD'
            else (array['EUR', 'GBP', 'NGN', 'KES', 'GHS', 'ZAR'])[1 + (p.i % 6)] end,
       case when c.slug = 'electronics' then 1 else 1 + floor(16 * power(p.r_guests, 2))::int end,
       (array['flexible', 'moderate', 'moderate', 'strict'])[1 + floor(p.r_policy * 4)::int]::app.cancellation_policy,
       p.i % 20 <> 0,
       case when p.r_rating < 0.7 then round((3 + 2 * p.r_rating / 0.7)::numeric, 2) else 0 end,
       case when p.r_rating < 0.7 then 1 + floor(250 * power(p.r_count, 3))::int else 0 end,
       timestamptz '2023-01-01 00:00:00+00' + p.i * interval '9 minutes' + p.r_time * interval '9 minutes',
       timestamptz '2023-01-01 00:00:00+00' + p.i * interval '9 minutes' + p.r_time * interval '9 minutes',
       m.latitude, m.longitude,
       coalesce((select array_agg(wa.slug order by wa.slug) from w_amenities wa where wa.i = p.i), '{}')
from w_products p
cross join lateral (select slug, name from w_category_cdf where upto >= p.r_category order by n limit 1) c
cross join lateral (select v from w_location_cdf where upto >= p.r_location order by n limit 1) l
join w_places pl on pl.i = p.i
cross join lateral app.map_place(md5('product:' || p.i)::uuid, pl.lat, pl.lng) m
order by p.i;

-- step: places
-- The exact points (and a street address) behind the public ones set above; the trigger that
-- would draw the public point again per row is off.
alter table app.product_addresses disable trigger product_addresses_map_point;
insert into app.product_addresses (product_id, latitude, longitude, address)
select md5('product:' || i)::uuid, lat, lng, (1 + i % 240) || ' ' || split_part(location, ', ', 1) || ' Road'
from w_places
order by i;
alter table app.product_addresses enable trigger product_addresses_map_point;

-- step: amenities
-- Drawn in the products step (w_amenities), where each listing's amenity_slugs were set; their
-- rows here, with the trigger that would set amenity_slugs again per statement off.
alter table app.product_amenities disable trigger product_amenities_amenity_slugs_insert;
insert into app.product_amenities (product_id, amenity)
select md5('product:' || i)::uuid, slug
from w_amenities
order by i, slug;
alter table app.product_amenities enable trigger product_amenities_amenity_slugs_insert;

-- step: photos
-- As uploads leave them once the worker has run: a 4:3 phone photo with its colour and its
-- three WebP variants (the paths are names only: no file is behind them). Written with the
-- media trigger off: it would queue a variants job per row for files that do not exist.
alter table app.product_photos disable trigger product_photos_media;
insert into app.product_photos (id, product_id, path, content_type, size_bytes, width, height, placeholder, variants,
                                position, created_at)
select md5('photo:' || i || ':' || k)::uuid, md5('product:' || i)::uuid,
       'bench/' || i || '-' || k || '.jpg', 'image/jpeg', 1500000 + (i * 7 + k * 13) % 3500000, 4000, 3000,
       '#' || lpad(to_hex((i * 2654435761 + k) % 16777216), 6, '0'),
       jsonb_build_array(jsonb_build_object('path', 'bench/' || i || '-' || k || '-w320.webp', 'width', 320, 'height', 240),
                         jsonb_build_object('path', 'bench/' || i || '-' || k || '-w960.webp', 'width', 960, 'height', 720),
                         jsonb_build_object('path', 'bench/' || i || '-' || k || '-w1920.webp', 'width', 1920, 'height', 1440)),
       k, timestamptz '2023-01-01 00:00:00+00' + i * interval '9 minutes'
from generate_series(1, 100000) i
cross join lateral generate_series(0, (i * 7) % 6 - 1) k
order by i, k;
alter table app.product_photos enable trigger product_photos_media;

-- step: analyze
analyze app.users;
analyze app.categories;
analyze app.products;
analyze app.product_amenities;
analyze app.product_photos;
analyze app.product_addresses;
