-- a rental with its payment (partitioned table, July 2026 partition), a customer update, a return
\set cust random(1, :ncust)
\set inv random(1, :ninv)
\set staff random(1, 2)
\set sec random(0, 2600000)
\set rid random(1, :nrental)
BEGIN;
WITH r AS (
  INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id)
  VALUES (TIMESTAMPTZ '2026-07-01 00:00:00+00' + (:sec + random()) * interval '1 second', :inv, :cust, :staff)
  RETURNING rental_id, rental_date, customer_id, staff_id)
INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date)
  SELECT customer_id, staff_id, rental_id, 4.99, rental_date + interval '1 minute' FROM r;
UPDATE customer SET email = 'c' || :cust || '.' || :sec || '@example.net', active = 1 - coalesce(active, 0) WHERE customer_id = :cust;
UPDATE rental SET return_date = now() WHERE rental_id = :rid;
END;
