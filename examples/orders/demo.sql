-- Orders written in plain SQL (psql), each write and its event in one transaction.
BEGIN;
WITH o AS (INSERT INTO orders (tenant_id, customer, total_minor, items)
           VALUES ('acme', 'Alan Turing', 4200, 2) RETURNING *)
SELECT searchsync_emit('order', id::text, tenant_id, version, to_jsonb(o)) FROM o;
COMMIT;

BEGIN;
WITH o AS (UPDATE orders SET status = 'shipped' WHERE customer = 'Alan Turing' RETURNING *)
SELECT searchsync_emit('order', id::text, tenant_id, version, to_jsonb(o)) FROM o;
COMMIT;
