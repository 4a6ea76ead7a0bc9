-- composite key with quoted identifiers in a quoted schema; identity and generated columns
\set o random(1, 1000000)
\set d random(1, 500)
BEGIN;
INSERT INTO "Sales Data"."Order Lines" ("Order ID", "Line No", "SKU", qty, "Unit Price")
  VALUES (10000000 + :o, 1, 'SKU-LIVE', 1, 9.99), (10000000 + :o, 2, 'SKU-LIVE-2', 2, 0.01)
  ON CONFLICT DO NOTHING;
UPDATE "Sales Data"."Order Lines" SET qty = qty + 1 WHERE "Order ID" = :d AND "Line No" = 2;
DELETE FROM "Sales Data"."Order Lines" WHERE "Order ID" = :d + 500 AND "Line No" = 3;
INSERT INTO demo.readings (device, v) VALUES (md5('dev' || :d)::uuid, :o / 3.0);
DELETE FROM demo.readings WHERE id = :o % 20000;
UPDATE demo.devices SET seen = now() WHERE id = md5('dev' || :d)::uuid;
END;
