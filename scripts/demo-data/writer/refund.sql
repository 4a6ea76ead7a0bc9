-- delete a customer's oldest payment (a delete in some partition), reprice a film (fires its triggers)
\set cust random(1, :ncust)
\set film random(1, 1000)
BEGIN;
DELETE FROM payment WHERE customer_id = :cust AND payment_id = (SELECT min(payment_id) FROM payment WHERE customer_id = :cust);
UPDATE film SET rental_rate = (0.99 + random() * 4)::numeric(4,2), description = description || '!' WHERE film_id = :film;
END;
