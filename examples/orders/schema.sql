-- The orders of a shop written by something other than Django (writer.js in Node, or plain SQL).
-- Every write bumps version and updated_at (the trigger), and calls searchsync_emit in the same
-- transaction: searchsync's outbox is a SQL contract (manage.py outbox install).
CREATE TABLE IF NOT EXISTS orders (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    customer    text        NOT NULL,
    status      text        NOT NULL DEFAULT 'placed',
    total_minor bigint      NOT NULL CHECK (total_minor >= 0),
    items       integer     NOT NULL CHECK (items > 0),
    note        text,                                   -- internal: the blueprint omits it
    version     bigint      NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION orders_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;   -- the row lock orders concurrent writers: versions never repeat
    NEW.updated_at := now();
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS orders_bump_version ON orders;
CREATE TRIGGER orders_bump_version BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_bump_version();
