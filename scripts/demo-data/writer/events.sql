-- insert, update and delete in the wide table of many types
-- (md5()::uuid rather than gen_random_uuid(), which PostgreSQL 11 and 12 have only in pgcrypto)
\set id random(1, :nev)
BEGIN;
INSERT INTO demo.events (uid, created_at, day, dur, price, ratio, flag, tags, doc, raw, ip, mood, rng, pt, box_dims, note, payload)
  VALUES (md5(random()::text || clock_timestamp()::text)::uuid, now(), current_date, interval '1 day 02:03:04.5', :id * 0.5, random(), random() < 0.5,
          ARRAY['live', NULL, 'a,b'], jsonb_build_object('live', true, 'n', :id), '\x00ff10', '::1', 'happy',
          int4range(:id, NULL), point(1.5, -2), ROW(1, 2), E'live\twriter', repeat('y', 300));
UPDATE demo.events SET doc = doc || jsonb_build_object('touched', clock_timestamp()::text), price = price + 1, flag = NOT coalesce(flag, false)
  WHERE id = :id;
DELETE FROM demo.events WHERE id = :id + 7;
END;
