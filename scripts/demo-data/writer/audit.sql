-- tables without a key: a log row, a duplicate, one copy of duplicates changed, one deleted;
-- a join table's rows (duplicates, NULLs) inserted and removed, and rarely truncated
\set actor random(0, 299)
\set r random(1, 40)
\set film random(1, 50)
BEGIN;
INSERT INTO demo.audit_log VALUES (now(), :actor, 'write', jsonb_build_object('n', :actor), :actor / 7.0);
INSERT INTO demo.audit_log SELECT * FROM demo.audit_log WHERE actor = :actor LIMIT 1;
UPDATE demo.audit_log SET detail = '{"seen": true}' WHERE ctid = (SELECT ctid FROM demo.audit_log WHERE actor = (:actor + 1) % 300 LIMIT 1);
DELETE FROM demo.audit_log WHERE ctid = (SELECT ctid FROM demo.audit_log WHERE actor = (:actor + 2) % 300 LIMIT 1);
INSERT INTO demo.film_tags VALUES (:film, 'live'), (:film, 'live'), (NULL, NULL);
DELETE FROM demo.film_tags WHERE ctid = (SELECT ctid FROM demo.film_tags WHERE film_id = :film LIMIT 1);
\if :r = 1
TRUNCATE demo.film_tags;
INSERT INTO demo.film_tags SELECT 1 + i % 50, 'refill' FROM generate_series(1, 100) i;
\endif
END;
