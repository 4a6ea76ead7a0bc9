-- Sample rows for the demo: pagila's tables (schema in pagila-schema.sql) plus a "demo" schema
-- with many column types, composite/text/uuid keys, quoted identifiers, an identity column, a
-- generated column, a table without a primary key but with a unique key, and two without any key
-- (a log found by an index on a NOT NULL column, and a join table with no index at all).
-- Run with psql -v mb=N (approximate database size in MB). Deterministic (setseed).
\set ON_ERROR_STOP on
SELECT setseed(0.42);
SET synchronous_commit = off;

-- scale: rentals and payments grow with :mb, the rest is the size filler in demo.events.
SELECT greatest(:mb, 1) * 600 AS n_rental, greatest(:mb, 1) * 10 + 400 AS n_customer,
       greatest(:mb, 1) * 20 + 1000 AS n_inventory \gset

INSERT INTO language (name) SELECT unnest(ARRAY['English','Italian','Japanese','Mandarin','French','German']);
INSERT INTO country (country) SELECT 'Country ' || i FROM generate_series(1, 109) i;
INSERT INTO city (city, country_id) SELECT 'City ' || i, 1 + (i % 109) FROM generate_series(1, 600) i;
INSERT INTO address (address, address2, district, city_id, postal_code, phone)
  SELECT i || ' Main Street', CASE WHEN i % 5 = 0 THEN 'Apt ' || i END, 'District ' || (i % 50),
         1 + (i % 600), lpad((i * 7919 % 100000)::text, 5, '0'), '+1-555-' || lpad(i::text, 7, '0')
  FROM generate_series(1, :n_customer + 10) i;
INSERT INTO category (name) SELECT unnest(ARRAY['Action','Animation','Children','Classics','Comedy','Documentary',
  'Drama','Family','Foreign','Games','Horror','Music','New','Sci-Fi','Sports','Travel']);
INSERT INTO actor (first_name, last_name)
  SELECT 'First' || i, (ARRAY['GUINESS','WAHLBERG','CHASE','DAVIS','LOLLOBRIGIDA','NICHOLSON','MOSTEL','JOHANSSON','SWANK','GABLE'])[1 + i % 10]
  FROM generate_series(1, 200) i;
INSERT INTO film (title, description, release_year, language_id, original_language_id, rental_duration,
                  rental_rate, length, replacement_cost, rating, special_features, fulltext)
  SELECT 'FILM TITLE ' || i, 'A ' || (ARRAY['Epic','Touching','Fateful','Astounding','Boring'])[1 + i % 5] || ' story of a dentist and a cat in Ünïcödé land ' || i,
         2000 + i % 23, 1 + i % 6, CASE WHEN i % 3 = 0 THEN 1 + (i + 1) % 6 END, 3 + i % 5,
         (0.99 + (i % 5) * 1.00)::numeric(4,2), 46 + i % 140, (9.99 + (i % 21))::numeric(5,2),
         (ARRAY['G','PG','PG-13','R','NC-17'])[1 + i % 5]::mpaa_rating,
         CASE i % 4 WHEN 0 THEN ARRAY['Trailers'] WHEN 1 THEN ARRAY['Commentaries','Deleted Scenes'] WHEN 2 THEN ARRAY['Behind the Scenes'] END,
         to_tsvector('english', 'film title ' || i)
  FROM generate_series(1, 1000) i;
INSERT INTO film_actor (actor_id, film_id) SELECT DISTINCT 1 + (f * 7 + k * 13) % 200, f FROM generate_series(1, 1000) f, generate_series(1, 5) k;
INSERT INTO film_category (film_id, category_id) SELECT f, 1 + f % 16 FROM generate_series(1, 1000) f;
INSERT INTO store (manager_staff_id, address_id) VALUES (1, 1), (2, 2);
INSERT INTO staff (first_name, last_name, address_id, email, store_id, username, password, picture)
  VALUES ('Mike', 'Hillyer', 3, 'mike@example.com', 1, 'Mike', '8cb2237d0679ca88db6464eac60da96345513964', '\x89504e470d0a1a0a'),
         ('Jon', 'Stephens', 4, 'jon@example.com', 2, 'Jon', NULL, NULL);
INSERT INTO customer (store_id, first_name, last_name, email, address_id, activebool, create_date, active)
  SELECT 1 + i % 2, 'Cust' || i, 'Omer ' || chr(65 + i % 26), 'cust' || i || '@example.org', 10 + i, i % 17 <> 0,
         DATE '2021-01-01' + i % 365, (i % 17 <> 0)::int
  FROM generate_series(1, :n_customer) i;
INSERT INTO inventory (film_id, store_id) SELECT 1 + i % 1000, 1 + i % 2 FROM generate_series(1, :n_inventory) i;
INSERT INTO rental (rental_date, inventory_id, customer_id, return_date, staff_id)
  SELECT ts, 1 + i % :n_inventory, 1 + (i * 31) % :n_customer, CASE WHEN i % 9 <> 0 THEN ts + interval '3 days' END, 1 + i % 2
  FROM (SELECT i, TIMESTAMPTZ '2022-01-01 00:00:00+00' + (i::float8 / :n_rental) * interval '1300 days' AS ts
        FROM generate_series(1, :n_rental) i) s;
INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date)
  SELECT customer_id, staff_id, rental_id, (0.99 + (rental_id % 10))::numeric(5,2), rental_date + interval '1 hour'
  FROM rental;

-- demo schema: type variety and key shapes.
CREATE SCHEMA demo;
CREATE SCHEMA "Sales Data";
CREATE TYPE demo.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE demo.dims AS (w numeric, h numeric);
CREATE TABLE demo.events (
  id         bigserial PRIMARY KEY,
  uid        uuid NOT NULL,
  created_at timestamptz NOT NULL,
  day        date,
  at_time    time,
  local_ts   timestamp,
  dur        interval,
  price      numeric(14, 4),
  ratio      double precision,
  small      real,
  counter    smallint,
  flag       boolean,
  tags       text[],
  doc        jsonb,
  raw        bytea,
  ip         inet,
  net        cidr,
  mac        macaddr,
  mood       demo.mood,
  rng        int4range,
  pt         point,
  box_dims   demo.dims,
  bits       bit varying(16),
  money_amt  money,
  xml_doc    xml,
  note       text,
  payload    text
);
CREATE TABLE "Sales Data"."Order Lines" (
  "Order ID" bigint NOT NULL,
  "Line No"  integer NOT NULL,
  "SKU"      text NOT NULL,
  qty        integer NOT NULL CHECK (qty > 0),
  "Unit Price" numeric(10, 2),
  PRIMARY KEY ("Order ID", "Line No")
);
CREATE TABLE demo.kv (k text PRIMARY KEY, v jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE demo.devices (id uuid PRIMARY KEY, name text NOT NULL, seen timestamptz);
CREATE TABLE demo.readings (
  id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device uuid NOT NULL REFERENCES demo.devices (id),
  v      numeric NOT NULL
);
-- A generated column where the server has them (PostgreSQL 12+): never copied, computed again.
SELECT current_setting('server_version_num')::int >= 120000 AS has_generated \gset
\if :has_generated
ALTER TABLE demo.readings ADD COLUMN v2 numeric GENERATED ALWAYS AS (v * 2) STORED;
\endif
CREATE TABLE demo.session_cache (sid integer NOT NULL, val text, UNIQUE (sid));
-- No key at all: duplicate rows and rows of NULLs are legal; capture moves them as whole rows.
CREATE TABLE demo.audit_log (at timestamptz NOT NULL, actor integer NOT NULL, action text, detail jsonb, amount float8);
CREATE INDEX ON demo.audit_log (actor);
CREATE TABLE demo.film_tags (film_id integer, tag text);
CREATE INDEX ON demo.events (created_at);
CREATE INDEX ON demo.events USING gin (doc);
CREATE UNIQUE INDEX ON demo.events (uid);

INSERT INTO demo.devices (id, name, seen)
  SELECT md5('dev' || i)::uuid, 'device ' || i, TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * interval '1 minute'
  FROM generate_series(1, 500) i;
INSERT INTO demo.readings (device, v) SELECT md5('dev' || (1 + i % 500))::uuid, (i % 1000) / 7.0 FROM generate_series(1, 20000) i;
INSERT INTO demo.kv (k, v) SELECT 'key:' || i, jsonb_build_object('n', i, 'even', i % 2 = 0) FROM generate_series(1, 5000) i;
INSERT INTO demo.session_cache SELECT i, 'session ' || i FROM generate_series(1, 200) i;
INSERT INTO demo.audit_log SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' + (i / 2) * interval '1 minute', (i / 2) % 300,
    CASE WHEN i % 14 < 2 THEN NULL ELSE 'act' || (i / 2) % 5 END, CASE WHEN i % 6 < 2 THEN jsonb_build_object('i', i / 2) END, (i / 2) / 7.0
  FROM generate_series(1, greatest(:mb, 1) * 100) i;
INSERT INTO demo.film_tags SELECT 1 + i % 50, CASE WHEN i % 9 = 0 THEN NULL ELSE 'tag' || i % 7 END FROM generate_series(1, 400) i;
INSERT INTO demo.film_tags VALUES (NULL, NULL), (NULL, NULL);
INSERT INTO "Sales Data"."Order Lines"
  SELECT o, l, 'SKU-' || (o * l % 997), 1 + (o + l) % 9, ((o * 13 + l) % 10000) / 100.0
  FROM generate_series(1, greatest(:mb, 1) * 200) o, generate_series(1, 3) l;

-- the filler: about 1.6 kB per row with its indexes, 450 rows per MB requested.
INSERT INTO demo.events (uid, created_at, day, at_time, local_ts, dur, price, ratio, small, counter, flag, tags, doc,
                         raw, ip, net, mac, mood, rng, pt, box_dims, bits, money_amt, xml_doc, note, payload)
  SELECT md5('ev' || i)::uuid,
         TIMESTAMPTZ '2023-01-01 00:00:00+00' + i * interval '17 seconds',
         DATE '2020-02-29' + i % 2000,
         TIME '00:00:00' + i * interval '1 second',
         TIMESTAMP '1999-12-31 23:59:59.999999' + i * interval '1 minute',
         make_interval(days => i % 40, secs => (i % 3600) / 7.0),
         (i * 1.2345)::numeric(14, 4),
         CASE WHEN i % 1000 = 0 THEN 'NaN'::float8 WHEN i % 1001 = 0 THEN '-Infinity'::float8 ELSE i / 3.0 END,
         (i / 7.0)::real,
         (i % 32767)::smallint,
         CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END,
         ARRAY['tag' || (i % 10), 'with space', 'quote"d', NULL],
         jsonb_build_object('i', i, 'name', 'événement ' || i, 'nested', jsonb_build_object('a', ARRAY[1, 2, i])),
         decode(md5(i::text), 'hex'),
         ('10.' || (i / 65536) % 256 || '.' || (i / 256) % 256 || '.' || i % 256)::inet,
         '192.168.0.0/16'::cidr,
         ('08:00:2b:' || lpad(to_hex(i / 65536 % 256), 2, '0') || ':' || lpad(to_hex(i / 256 % 256), 2, '0') || ':' || lpad(to_hex(i % 256), 2, '0'))::macaddr,
         (ARRAY['sad', 'ok', 'happy'])[1 + i % 3]::demo.mood,
         int4range(i, i + 10),
         point(i / 10.0, -i / 3.0),
         ROW(i % 100, i % 7)::demo.dims,
         (i % 65536)::bit(16)::varbit,
         (i / 100.0)::numeric::money,
         xmlparse(content '<e n="' || i || '">x &amp; y</e>'),
         CASE WHEN i % 11 = 0 THEN E'tab\there\nnewline \\ backslash' WHEN i % 13 = 0 THEN '' ELSE 'note ' || i END,
         repeat(md5(i::text) || md5((i + 1)::text), 12)
  FROM generate_series(1, greatest(:mb, 1) * 450) i;

-- pagila creates it WITH NO DATA: populated here, so the cutover must refresh it on the target
REFRESH MATERIALIZED VIEW public.rental_by_category;

SET client_min_messages = error;
ANALYZE;
