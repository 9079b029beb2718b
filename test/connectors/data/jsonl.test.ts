import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { appendFile, chmod, mkdir, open, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CollectionTarget, Row, ScanPage, ScanQuery } from '../../../src/connectors/data/data-connector.js';
import { JsonlDataConnector, MAX_PAGE_RESTARTS, openJsonlDataConnector, type MalformedLine } from '../../../src/connectors/data/jsonl.js';
import { isCustodianError } from '../../../src/core/index.js';
import { describeConformance, person } from './conformance.js';

const FIELDS = 'id,email,name,note,ref';

async function collect(iterable: AsyncIterable<readonly Row[]>): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const batch of iterable) rows.push(...batch);
  return rows;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isCustodianError(err) ? err.code : `not a CustodianError: ${String(err)}`;
}

const jsonl = (rows: readonly Record<string, unknown>[]): string => rows.map((r) => JSON.stringify(r) + '\n').join('');

describeConformance('jsonl', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cst-jsonl-'));
  const connector = await openJsonlDataConnector(`jsonl:${dir}`, { onMalformedLine: () => undefined });
  return {
    connector,
    target: (collection) => ({ name: collection, options: { fields: FIELDS } }),
    seed: async (rows) => writeFile(join(dir, 'people.jsonl'), jsonl(rows)),
    visits: {
      target: { name: 'visits', options: { fields: 'id,at,email,note' } },
      seed: async (rows) => writeFile(join(dir, 'visits.jsonl'), jsonl(rows)),
    },
    cleanup: async () => {
      await connector.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('jsonl data connector', () => {
  let dir: string;
  let malformed: MalformedLine[];
  let files: JsonlDataConnector;
  const people: CollectionTarget = { name: 'people', options: {} };
  const path = (): string => join(dir, 'people.jsonl');

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cst-jsonl-'));
    malformed = [];
    files = new JsonlDataConnector({ directory: dir, onMalformedLine: (m) => malformed.push(m) });
    await writeFile(path(), jsonl([1, 2, 3, 4, 5].map((i) => person(i))));
  });
  afterEach(async () => {
    await files.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('opens jsonl:, file: and file:/// URLs, and refuses a missing directory', async () => {
    for (const url of [`jsonl:${dir}`, `file:${dir}`, pathToFileURL(dir).href]) {
      const c = await openJsonlDataConnector(url);
      expect((await collect(c.find(people, 'id', ['p-00001'], ['email'])))[0]?.email).toBe('person1@example.com');
    }
    expect(await codeOf(openJsonlDataConnector(`jsonl:${join(dir, 'missing')}`))).toBe('CST_ERR_CONNECTOR_UNAVAILABLE');
    expect(await codeOf(openJsonlDataConnector('s3://bucket'))).toBe('CST_ERR_CONNECTOR_SCHEMA');
  });

  it('refuses paths that leave the directory: .., absolute paths, symbolic links out', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'cst-outside-'));
    try {
      await writeFile(join(outside, 'secret.jsonl'), jsonl([person(1)]));
      await symlink(join(outside, 'secret.jsonl'), join(dir, 'link.jsonl'));
      await symlink(outside, join(dir, 'linkdir'));
      await mkdir(join(dir, 'sub'));
      await writeFile(join(dir, 'sub', 'inner.jsonl'), jsonl([person(9)]));
      await symlink(join(dir, 'sub', 'inner.jsonl'), join(dir, 'inside-link.jsonl'));
      for (const file of ['../x.jsonl', `../${outside.split('/').at(-1)!}/secret.jsonl`, join(outside, 'secret.jsonl'), 'link.jsonl', 'linkdir/secret.jsonl', 'sub/../../x.jsonl', '/etc/passwd', 'sub', '']) {
        const target = { name: 'people', options: { file } };
        expect(await codeOf(collect(files.find(target, 'id', ['p-00001'], ['email']))), file).toBe('CST_ERR_CONNECTOR_SCHEMA');
        expect(await codeOf(files.deleteRows(target, 'id', ['p-00001'])), file).toBe('CST_ERR_CONNECTOR_SCHEMA');
      }
      expect(await readFile(join(outside, 'secret.jsonl'), 'utf8')).toBe(jsonl([person(1)]));
      // Subdirectories and links that stay inside are fine; writes go to the link's target.
      expect((await collect(files.find({ name: 'x', options: { file: 'sub/inner.jsonl' } }, 'id', ['p-00009'], ['email']))).length).toBe(1);
      expect(await files.deleteRows({ name: 'x', options: { file: 'inside-link.jsonl' } }, 'id', ['p-00009'])).toBe(1);
      expect(await readFile(join(dir, 'sub', 'inner.jsonl'), 'utf8')).toBe('');
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('matches nested fields by dotted path, strings and numbers by their text', async () => {
    await writeFile(path(), jsonl([{ id: 1, contact: { email: 'a@example.com' } }, { id: '2', 'contact.email': 'b@example.com' }, { id: true, contact: 'x' }]));
    expect(await collect(files.find(people, 'contact.email', ['a@example.com', 'b@example.com'], ['id']))).toEqual([
      { 'contact.email': 'a@example.com', id: 1 },
      { 'contact.email': 'b@example.com', id: '2' },
    ]);
    expect((await collect(files.find(people, 'id', ['1', 2, 'true'], []))).map((r) => r.id)).toEqual([1, '2']);
    expect(await files.updateRows(people, 'id', [{ key: 1, set: { 'contact.email': null, 'contact.phone': '+1 555 0100' } }])).toBe(1);
    expect(JSON.parse((await readFile(path(), 'utf8')).split('\n')[0]!)).toEqual({ id: 1, contact: { email: null, phone: '+1 555 0100' } });
  });

  it('keeps malformed lines byte for byte, reports their line numbers, never their content', async () => {
    const original = `${JSON.stringify(person(1))}\nnot json {\n\n[1,2]\n${JSON.stringify(person(2))}\r\n\xff\xfe broken\n${JSON.stringify(person(3))}`;
    await writeFile(path(), Buffer.from(original, 'latin1'));
    expect((await collect(files.find(people, 'id', ['p-00002', 'p-00003'], ['email']))).length).toBe(2);
    expect(malformed.map((m) => m.line)).toEqual([2, 4, 6]);
    expect(JSON.stringify(malformed)).not.toContain('broken');
    malformed = [];
    expect(await files.updateRows(people, 'id', [{ key: 'p-00002', set: { name: 'Masked' } }])).toBe(1);
    expect(await files.deleteRows(people, 'id', ['p-00003'])).toBe(1);
    const after = (await readFile(path())).toString('latin1');
    expect(after).toBe(`${JSON.stringify(person(1))}\nnot json {\n\n[1,2]\n${JSON.stringify({ ...person(2), name: 'Masked' })}\r\n\xff\xfe broken\n`);
    expect(malformed.map((m) => m.line)).toEqual([2, 4, 6, 2, 4, 6]);
  });

  it('leaves the original intact when the writer fails between the temporary write and the rename', async () => {
    const before = await readFile(path(), 'utf8');
    let temp = '';
    const failing = new JsonlDataConnector({
      directory: dir,
      hooks: {
        beforeRename: async (t) => {
          temp = t;
          // The temporary file is complete and fsynced at this point.
          expect(await readFile(t, 'utf8')).not.toContain('p-00001');
          throw Object.assign(new Error('simulated crash'), { code: 'EIO' });
        },
      },
    });
    expect(await codeOf(failing.deleteRows(people, 'id', ['p-00001']))).toBe('CST_ERR_CONNECTOR_UNAVAILABLE');
    expect(temp).not.toBe('');
    expect(await readFile(path(), 'utf8')).toBe(before);
    expect((await readdir(dir)).sort()).toEqual(['people.jsonl']);
    // The lock was released: the next writer proceeds.
    expect(await files.deleteRows(people, 'id', ['p-00001'])).toBe(1);
  });

  it('survives a writer killed before its rename: original intact, stale lock broken, temporary file removed', async () => {
    const before = await readFile(path(), 'utf8');
    const module = pathToFileURL(resolve('src/connectors/data/jsonl.ts')).href;
    const script = `
      import { JsonlDataConnector } from ${JSON.stringify(module)};
      const c = new JsonlDataConnector({ directory: ${JSON.stringify(dir)}, hooks: { beforeRename: () => { process.kill(process.pid, 'SIGKILL'); return new Promise(() => {}); } } });
      await c.updateRows({ name: 'people', options: {} }, 'id', [{ key: 'p-00002', set: { name: 'never' } }]);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'ignore' });
    const signal = await new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_code, sig) => done(sig)));
    expect(signal).toBe('SIGKILL');
    const left = await readdir(dir);
    expect(left.some((n) => n.endsWith('.tmp'))).toBe(true);
    expect(left).toContain('.people.jsonl.lock');
    expect(await readFile(path(), 'utf8')).toBe(before);
    expect((await collect(files.find(people, 'id', ['p-00002'], ['name'])))[0]?.name).toBe('Person 2');
    // The holder is dead: the next writer breaks the lock at once and cleans the temporary file up.
    const quick = new JsonlDataConnector({ directory: dir, lockTimeoutMs: 2000 });
    expect(await quick.updateRows(people, 'id', [{ key: 'p-00002', set: { name: 'Masked' } }])).toBe(1);
    expect((await readdir(dir)).sort()).toEqual(['people.jsonl']);
  }, 30_000);

  it('waits for a live lock and gives up with CST_ERR_CONNECTOR_UNAVAILABLE; breaks a lock that went stale', async () => {
    const lock = join(dir, '.people.jsonl.lock');
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: 'another-host', at: new Date().toISOString() }));
    const impatient = new JsonlDataConnector({ directory: dir, lockTimeoutMs: 150, staleLockMs: 60_000 });
    expect(await codeOf(impatient.deleteRows(people, 'id', ['p-00001']))).toBe('CST_ERR_CONNECTOR_UNAVAILABLE');
    expect(await readFile(path(), 'utf8')).toContain('p-00001');
    const patient = new JsonlDataConnector({ directory: dir, lockTimeoutMs: 5_000, staleLockMs: 300 });
    expect(await patient.deleteRows(people, 'id', ['p-00001'])).toBe(1);
  });

  it('serialises concurrent writers: no update is lost', async () => {
    const rows = Array.from({ length: 100 }, (_, i) => person(i + 1));
    await writeFile(path(), jsonl(rows));
    const a = new JsonlDataConnector({ directory: dir });
    const b = new JsonlDataConnector({ directory: dir });
    const counts = await Promise.all(rows.map((r, i) => (i % 2 === 0 ? a : b).updateRows(people, 'id', [{ key: r.id as string, set: { note: `masked ${i}` } }])));
    expect(counts.every((n) => n === 1)).toBe(true);
    const after = (await readFile(path(), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(after.map((r) => r.note)).toEqual(rows.map((_, i) => `masked ${i}`));
    expect((await readdir(dir)).sort()).toEqual(['people.jsonl']);
  });

  it('serialises writers in separate processes through the lock file', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => person(i + 1));
    await writeFile(path(), jsonl(rows));
    const module = pathToFileURL(resolve('src/connectors/data/jsonl.ts')).href;
    const worker = (parity: number): Promise<number | null> => {
      const script = `
        import { JsonlDataConnector } from ${JSON.stringify(module)};
        const c = new JsonlDataConnector({ directory: ${JSON.stringify(dir)} });
        for (let i = ${parity}; i < 40; i += 2) {
          const n = await c.updateRows({ name: 'people', options: {} }, 'id', [{ key: 'p-' + String(i + 1).padStart(5, '0'), set: { note: 'by ${parity}' } }]);
          if (n !== 1) process.exit(3);
        }
      `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'ignore' });
      return new Promise((done) => child.on('exit', (code) => done(code)));
    };
    expect(await Promise.all([worker(0), worker(1)])).toEqual([0, 0]);
    const after = (await readFile(path(), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(after.map((r) => r.note)).toEqual(rows.map((_, i) => `by ${i % 2}`));
    expect((await readdir(dir)).sort()).toEqual(['people.jsonl']);
  }, 30_000);

  it('does not rewrite the file when nothing changes, and keeps its mode', async () => {
    const { mtimeMs } = await stat(path());
    await new Promise((r) => setTimeout(r, 20));
    expect(await files.updateRows(people, 'id', [{ key: 'p-00001', set: { name: 'Person 1' } }])).toBe(0);
    expect(await files.deleteRows(people, 'id', ['nobody'])).toBe(0);
    expect((await stat(path())).mtimeMs).toBe(mtimeMs);
    await chmod(path(), 0o600);
    expect(await files.deleteRows(people, 'id', ['p-00005'])).toBe(1);
    expect((await stat(path())).mode & 0o777).toBe(0o600);
  });
});

describe('jsonl pages (scan, findExpired): resumed at a byte offset', () => {
  let dir: string;
  let read: number;
  const people: CollectionTarget = { name: 'people', options: {} };
  const path = (): string => join(dir, 'people.jsonl');
  const connector = (options: Partial<ConstructorParameters<typeof JsonlDataConnector>[0]> = {}) =>
    new JsonlDataConnector({ directory: dir, onMalformedLine: () => undefined, hooks: { onRead: (n) => (read += n) }, ...options });

  /** Every page of `target` until `next` is null, with the bytes each page read. */
  async function pages(files: JsonlDataConnector, query: Omit<ScanQuery, 'cursor'>, between?: (page: number) => Promise<void>): Promise<{ rows: Row[]; reads: number[]; sizes: number[] }> {
    const rows: Row[] = [];
    const reads: number[] = [];
    const sizes: number[] = [];
    let cursor: string | undefined;
    for (let n = 0; n < 10_000; n++) {
      read = 0;
      const page = await files.scan(people, { ...query, cursor });
      reads.push(read);
      sizes.push(page.rows.length);
      rows.push(...page.rows);
      if (page.next === null) return { rows, reads, sizes };
      cursor = page.next;
      await between?.(n);
    }
    throw new Error('scan did not end');
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cst-jsonl-pages-'));
    read = 0;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('property: every row exactly once, in file order, and each page reads only its own lines (plus one chunk)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('row', 'row', 'row', 'blank', 'malformed'), { maxLength: 250 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 64, max: 2048 }),
        fc.boolean(),
        async (kinds, limit, chunk, windowed) => {
          // Lines of varied length; the window keeps rows with an even number.
          const lines = kinds.map((kind, i) =>
            kind === 'blank' ? '' : kind === 'malformed' ? `not json ${'x'.repeat(i % 37)}` : JSON.stringify({ id: `r-${i}`, email: `r${i}@example.com`, pad: 'y'.repeat((i * 7) % 90), at: i % 2 === 0 ? '2020-01-01T00:00:00.000Z' : '2030-01-01T00:00:00.000Z' }),
          );
          await writeFile(path(), lines.map((l) => l + '\n').join(''));
          const ends: number[] = [];
          let offset = 0;
          for (const l of lines) ends.push((offset += Buffer.byteLength(l) + 1));
          const expected = kinds.flatMap((kind, i) => (kind === 'row' && (!windowed || i % 2 === 0) ? [`r-${i}`] : []));
          const files = connector({ readChunkBytes: chunk });
          const query = { keyField: 'id', fields: ['email'], limit, ...(windowed ? { timeField: 'at', to: '2025-01-01T00:00:00.000Z' } : {}) };
          let cursor: string | undefined;
          let start = 0;
          let anchor = 0;
          const seen: string[] = [];
          for (let n = 0; ; n++) {
            expect(n).toBeLessThan(lines.length + 2);
            read = 0;
            const page = await files.scan(people, { ...query, cursor });
            expect(page.rows.length).toBeLessThanOrEqual(limit);
            seen.push(...page.rows.map((r) => String(r.id)));
            // The page consumed the lines up to its last row's (when it stopped at `limit`), or to the end.
            const last = page.rows.at(-1);
            const end = page.next === null || last === undefined ? offset : ends[Number(String(last.id).slice(2))]!;
            expect(read).toBeLessThanOrEqual(end - start + chunk + anchor);
            if (page.next === null) break;
            anchor = last === undefined ? 0 : Buffer.byteLength(lines[Number(String(last.id).slice(2))]!) + 1;
            start = end;
            cursor = page.next;
          }
          expect(seen).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('ends a page early after pageBytes when few lines match, with a cursor to go on', async () => {
    const rows = Array.from({ length: 400 }, (_, i) => ({ id: `r-${i}`, at: i === 399 ? '2020-01-01T00:00:00.000Z' : '2030-01-01T00:00:00.000Z' }));
    await writeFile(path(), jsonl(rows));
    const files = connector({ readChunkBytes: 256, pageBytes: 1024 });
    const walk = await pages(files, { keyField: 'id', fields: [], limit: 10, timeField: 'at', to: '2025-01-01T00:00:00.000Z' });
    expect(walk.rows.map((r) => r.id)).toEqual(['r-399']);
    expect(walk.sizes.length).toBeGreaterThan(5);
    for (const bytes of walk.reads) expect(bytes).toBeLessThanOrEqual(1024 + 256 + 64);
  });

  it('goes on at the offset when lines are appended between pages', async () => {
    await writeFile(path(), jsonl(Array.from({ length: 10 }, (_, i) => person(i + 1))));
    const files = connector();
    const walk = await pages(files, { keyField: 'id', fields: [], limit: 4 }, async (n) => {
      if (n === 0) await appendFile(path(), jsonl([person(11), person(12)]));
    });
    expect(walk.rows.map((r) => r.id)).toEqual(Array.from({ length: 12 }, (_, i) => person(i + 1).id));
  });

  it('carries the offset over its own rewrites (retention deleting between pages): each row once, one pass over the file', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => ({ id: `r-${String(i).padStart(3, '0')}`, email: `r${i}@example.com`, at: i % 3 === 0 ? '2030-01-01T00:00:00.000Z' : '2020-01-01T00:00:00.000Z' }));
    await writeFile(path(), jsonl(rows));
    const size = (await stat(path())).size;
    const files = connector({ readChunkBytes: 512 });
    const due = { ageField: 'at', cutoff: '2025-01-01T00:00:00.000Z' };
    const seen: string[] = [];
    let pagesRead = 0;
    let cursor: string | undefined;
    read = 0;
    let next = files.findExpired(people, { ...due, keyField: 'id', limit: 17, fields: ['email'] });
    for (;;) {
      const page = await next;
      pagesRead++;
      seen.push(...page.rows.map((r) => String(r.id)));
      expect(page.next).not.toBe(cursor);
      // As retention does: the next page is read while this one is deleted (the file is rewritten meanwhile).
      if (page.next !== null) next = files.findExpired(people, { ...due, keyField: 'id', cursor: (cursor = page.next), limit: 17, fields: ['email'] });
      await files.deleteExpired(people, 'id', page.rows.map((r) => r.id as string), due);
      if (page.next === null) break;
    }
    const expected = rows.filter((_, i) => i % 3 !== 0).map((r) => r.id);
    expect(seen).toEqual(expected);
    expect(pagesRead).toBeGreaterThan(10);
    const left = (await readFile(path(), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
    expect(left).toEqual(rows.filter((_, i) => i % 3 === 0).map((r) => r.id));
    // Each rewrite reads the file once (as every JSONL write does); the pages together read it about once more,
    // plus a chunk and an anchor line each — not once per page from the start.
    expect(read).toBeLessThanOrEqual(pagesRead * size + size + pagesRead * (512 + 100));
    read = 0;
    const again = await pages(files, { keyField: 'id', fields: [], limit: 7 });
    expect(again.rows).toHaveLength(100);
    expect(read).toBeLessThanOrEqual((await stat(path())).size + again.sizes.length * (512 + 100));
  });

  it('goes on in its own file when the page opened it just before a rewrite registered its move (rows came twice)', async () => {
    await writeFile(path(), jsonl(Array.from({ length: 10 }, (_, i) => ({ id: i + 1, email: `p${i + 1}@example.com`, at: '2020-01-01T00:00:00Z' }))));
    const due = { ageField: 'at', cutoff: '2026-01-01T00:00:00.000Z' };
    // Holds the next page between opening the file (stat of its handle, in identify) and #resume, deterministically.
    const probe = await open(path(), 'r');
    const proto = Object.getPrototypeOf(probe) as { stat: (...args: unknown[]) => Promise<unknown> };
    await probe.close();
    const stat0 = proto.stat;
    let armed = false;
    let pageOpened!: () => void;
    const opened = new Promise<void>((r) => (pageOpened = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    proto.stat = async function (this: unknown, ...args: unknown[]) {
      if (armed) {
        armed = false;
        pageOpened();
        await gate;
      }
      return stat0.apply(this, args);
    };
    try {
      let cursor: string | undefined = undefined;
      let second: Promise<ScanPage> | undefined;
      const files = connector({
        hooks: {
          // The next page opens the old file now, before the rename, and resumes only after the move is registered.
          beforeRename: async () => {
            if (second !== undefined) return;
            armed = true;
            second = files.findExpired(people, { ...due, keyField: 'id', cursor, limit: 3, fields: ['email'] });
            await opened;
          },
        },
      });
      const first = await files.findExpired(people, { ...due, keyField: 'id', limit: 3, fields: ['email'] });
      expect(first.rows.map((r) => r.id)).toEqual([1, 2, 3]);
      cursor = first.next!;
      // Retention deletes a page's rows while it reads the next one.
      expect(await files.deleteRows(people, 'id', [1, 2, 3])).toBe(3);
      release();
      const page = await second!;
      expect(page.rows.map((r) => r.id)).toEqual([4, 5, 6]);
      // The pages after it follow the rewrite from that file: each row once, and the walk never started over.
      const rest: unknown[] = [];
      for (let next = page.next; next !== null; ) {
        const more = await files.findExpired(people, { ...due, keyField: 'id', cursor: next, limit: 3, fields: ['email'] });
        rest.push(...more.rows.map((r) => r.id));
        next = more.next;
      }
      expect(rest).toEqual([7, 8, 9, 10]);
      // Its cursor counts no restart.
      expect((JSON.parse(Buffer.from(page.next!.slice('jsonl1.'.length), 'base64url').toString('utf8')) as unknown[])[4]).toBe(0);
    } finally {
      proto.stat = stat0;
      release();
    }
  });

  it('starts over when another writer replaced the file (rows may come twice, none is missed), and gives up after too many restarts', async () => {
    await writeFile(path(), jsonl(Array.from({ length: 10 }, (_, i) => person(i + 1))));
    const files = connector();
    const walk = await pages(files, { keyField: 'id', fields: [], limit: 4 }, async (n) => {
      // Another program rewrites the file in place: the first row goes, a new one comes last.
      if (n === 0) await writeFile(path(), jsonl([...Array.from({ length: 9 }, (_, i) => person(i + 2)), person(11)]));
    });
    const ids = walk.rows.map((r) => String(r.id));
    expect(new Set(ids)).toEqual(new Set(Array.from({ length: 11 }, (_, i) => person(i + 1).id)));
    expect(ids.slice(4)).toEqual(Array.from({ length: 10 }, (_, i) => person(i + 2).id));
    let cursor = (await files.scan(people, { keyField: 'id', fields: [], limit: 1 })).next!;
    let error: unknown;
    for (let n = 0; n <= MAX_PAGE_RESTARTS && error === undefined; n++) {
      await writeFile(path(), jsonl([person(100 + n), ...Array.from({ length: 5 }, (_, i) => person(i + 1))]));
      try {
        cursor = (await files.scan(people, { keyField: 'id', fields: [], cursor, limit: 1 })).next!;
      } catch (err) {
        error = err;
      }
    }
    expect(isCustodianError(error, 'CST_ERR_CONNECTOR_UNAVAILABLE')).toBe(true);
  });

  it('refuses a cursor it did not make, or one of another connector kind', async () => {
    await writeFile(path(), jsonl([person(1)]));
    const files = connector();
    for (const cursor of ['"p-00001"', '42', 'jsonl1.', `jsonl1.${Buffer.from('[1,"1:1",5,"",0]').toString('base64url')}`, 'redis1.W251bGwsW11d']) {
      expect(await codeOf(files.scan(people, { keyField: 'id', fields: [], cursor, limit: 5 })), cursor).toBe('CST_ERR_VALIDATION');
    }
  });
});
