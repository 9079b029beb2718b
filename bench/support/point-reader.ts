/**
 * A concurrent reader for benchmarks, in its own process so that the process under test cannot stall it:
 * `node --import tsx point-reader.ts <url> <table> <rows>` runs `select … where id = $1` on random ids back to
 * back on one connection, and when its stdin closes prints the latencies (ms) as one JSON array and exits.
 */
import pg from 'pg';

const [url, tableName, rowsText] = process.argv.slice(2);
const rows = Number(rowsText);
if (url === undefined || tableName === undefined || !/^[a-z_]+$/.test(tableName) || !Number.isInteger(rows)) {
  process.stderr.write('usage: point-reader.ts <url> <table> <rows>\n');
  process.exit(2);
}
const client = new pg.Client({ connectionString: url, application_name: 'bench-reader' });
await client.connect();
let done = false;
process.stdin.on('end', () => (done = true));
process.stdin.resume();
const latencies: number[] = [];
const text = `select id, email, at, note from ${tableName} where id = $1`;
process.stdout.write('ready\n');
while (!done) {
  const id = 1 + Math.floor(Math.random() * rows);
  const t0 = performance.now();
  await client.query({ name: 'read', text, values: [id] });
  latencies.push(performance.now() - t0);
}
await client.end();
process.stdout.write(JSON.stringify(latencies.map((x) => Math.round(x * 1000) / 1000)) + '\n');
