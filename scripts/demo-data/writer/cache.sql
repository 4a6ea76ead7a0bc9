-- a TRUNCATE and refill of a small table keyed by a unique constraint (no primary key)
BEGIN;
TRUNCATE demo.session_cache;
INSERT INTO demo.session_cache SELECT i, 'live ' || i || ' ' || now() FROM generate_series(1, 50) i;
END;
