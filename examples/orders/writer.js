// Writes orders as any Node service would: the row and its searchsync event in one transaction.
// searchsync_emit() is searchsync's outbox as a SQL contract (manage.py outbox install): nothing
// here is searchsync code, and the same call works from any language.
//
//   node writer.js [--orders N] [--updates N] [--if-empty]      (DATABASE_URL, default: the devstack)
"use strict";

const { Client } = require("pg");

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const table = process.env.ORDERS_TABLE || "orders";
if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`ORDERS_TABLE ${table} is not a plain table name`);
const customers = ["Ada Lovelace", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth", "Frances Allen"];
const statuses = ["paid", "shipped", "delivered", "returned"];

// One transaction: the write, then the event of the row as it now is (to_jsonb: the whole row,
// which the declared blueprint turns into the document).
async function placeOrder(db, i) {
  await db.query("BEGIN");
  try {
    const { rows } = await db.query(
      `WITH o AS (INSERT INTO ${table} (tenant_id, customer, total_minor, items, note)
                  VALUES ($1, $2, $3, $4, $5) RETURNING *)
       SELECT searchsync_emit('order', id::text, tenant_id, version, to_jsonb(o)) AS event_id, id FROM o`,
      [i % 3 === 0 ? "globex" : "acme", customers[i % customers.length], 500 + ((i * 7919) % 50000),
       1 + (i % 4), "packed by the night shift"]);
    await db.query("COMMIT");
    return rows[0].id;
  } catch (error) {
    await db.query("ROLLBACK");
    throw error;
  }
}

async function changeStatus(db, id, status) {
  await db.query("BEGIN");
  try {
    await db.query(
      `WITH o AS (UPDATE ${table} SET status = $2 WHERE id = $1 RETURNING *)
       SELECT searchsync_emit('order', id::text, tenant_id, version, to_jsonb(o)) FROM o`, [id, status]);
    await db.query("COMMIT");
  } catch (error) {
    await db.query("ROLLBACK");
    throw error;
  }
}

async function main() {
  const db = new Client({
    connectionString: process.env.DATABASE_URL || "postgres://searchsync:searchsync@127.0.0.1:5432/searchsync",
  });
  await db.connect();
  try {
    if (args.includes("--if-empty")) {
      const { rows } = await db.query(`SELECT EXISTS (SELECT 1 FROM ${table}) AS any`);
      if (rows[0].any) {
        console.log(`${table}: already has orders, nothing written`);
        return;
      }
    }
    const ids = [];
    for (let i = 0; i < option("orders", 200); i++) ids.push(await placeOrder(db, i));
    const updates = option("updates", Math.floor(ids.length / 2));
    for (let i = 0; i < updates && ids.length; i++) await changeStatus(db, ids[(i * 31) % ids.length], statuses[i % 4]);
    console.log(`${table}: ${ids.length} orders placed, ${updates} status changes, each with its event`);
  } finally {
    await db.end();
  }
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
