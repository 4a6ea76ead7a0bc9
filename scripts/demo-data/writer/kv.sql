-- text primary keys: upsert, delete, and an update that CHANGES the key
\set n random(1, 5000)
\set m random(1, 5000)
BEGIN;
INSERT INTO demo.kv (k, v) VALUES ('live:' || :n, '{"c": 1}')
  ON CONFLICT (k) DO UPDATE SET v = jsonb_set(demo.kv.v, '{c}', to_jsonb(coalesce((demo.kv.v->>'c')::int, 0) + 1)), updated_at = now();
DELETE FROM demo.kv WHERE k IN ('live:' || :m, 'key:' || :m);
UPDATE demo.kv SET k = k || '+', updated_at = now() WHERE k = 'key:' || :n;
END;
