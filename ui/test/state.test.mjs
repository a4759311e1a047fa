import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultFilter, normalizeFilter, filterToApi, serializeFilter, parseFilter, filterKey,
  filtersEqual, parseRoute, formatRoute, viewForKey, createStore, UndoStack, upsertJob,
  activeJobs, countAbove,
} from '../src/lib/state.js';

test('default filter is the exact listPhotos shape', () => {
  assert.deepEqual(filterToApi(defaultFilter()), { kind: 'all', source: null, place: null, ids: null });
});

test('filters round-trip through the URL', () => {
  const cases = [
    defaultFilter(),
    { kind: 'untagged', source: null, place: null, ids: null },
    { kind: 'tagged', source: 'exif', place: null, ids: null },
    { kind: 'all', source: null, place: { cc: 'FR', region: 'Île-de-France', city: 'Paris' }, ids: null },
    { kind: 'proposed', source: null, place: { cc: 'NZ', region: null, city: null }, ids: null },
    { kind: 'all', source: 'user', place: { cc: 'US', region: 'New York & Co = "x"', city: null }, ids: null },
  ];
  for (const f of cases) {
    const q = serializeFilter(f);
    assert.deepEqual(parseFilter(q), normalizeFilter(f), q);
    assert.ok(filtersEqual(parseFilter(q), f));
  }
  assert.equal(serializeFilter(defaultFilter()), '');
  assert.equal(serializeFilter({ kind: 'missing' }), 'kind=missing');
});

test('ids are never serialised but are passed to the API', () => {
  const f = { kind: 'all', ids: [3, '4', -1, 2.5, 'x'] };
  assert.deepEqual(filterToApi(f).ids, [3, 4]);
  assert.equal(serializeFilter(f), '');
});

test('junk is normalised, not trusted', () => {
  assert.deepEqual(parseFilter('kind=evil&cc='), defaultFilter());
  assert.deepEqual(normalizeFilter(null), defaultFilter());
  // A city without a region is meaningless in the place tree.
  assert.deepEqual(normalizeFilter({ place: { cc: 'IT', city: 'Rome' } }).place, { cc: 'IT', region: null, city: null });
  assert.notEqual(filterKey({ kind: 'all' }), filterKey({ kind: 'tagged' }));
});

test('routes and view keys', () => {
  assert.deepEqual(parseRoute('#/review'), { view: 'review', query: '' });
  assert.deepEqual(parseRoute('#/library?kind=untagged'), { view: 'library', query: 'kind=untagged' });
  assert.deepEqual(parseRoute(''), { view: 'library', query: '' });
  assert.deepEqual(parseRoute('#/nope'), { view: 'library', query: '' });
  assert.equal(formatRoute('map'), '#/map');
  assert.equal(formatRoute('library', 'kind=tagged'), '#/library?kind=tagged');
  assert.equal(viewForKey('1'), 'library');
  assert.equal(viewForKey('7'), 'settings');
  assert.equal(viewForKey('8'), null);
  assert.equal(viewForKey('0'), null);
  assert.equal(viewForKey('a'), null);
});

test('store notifies only on change', () => {
  const s = createStore({ a: 1, b: 2 });
  const seen = [];
  const off = s.subscribe((st, changed) => seen.push(changed));
  s.set({ a: 1 });
  s.set({ a: 3 });
  s.set((st) => ({ b: st.b + 1 }));
  off();
  s.set({ a: 9 });
  assert.deepEqual(seen, [['a'], ['b']]);
  assert.equal(s.get().a, 9);
});

test('undo stack', () => {
  const u = new UndoStack(2);
  assert.equal(u.push({ batchId: null }), false);
  u.push({ batchId: 1 });
  u.push({ batchId: 2 });
  u.push({ batchId: 3 });
  assert.equal(u.size, 2);
  assert.ok(u.remove(2));
  assert.equal(u.pop().batchId, 3);
  assert.equal(u.pop(), null);
});

test('jobs merge by id, newest first', () => {
  let jobs = [{ id: 1, state: 'done' }];
  jobs = upsertJob(jobs, { id: 2, state: 'running' });
  jobs = upsertJob(jobs, { id: 1, state: 'failed' });
  assert.deepEqual(jobs.map((j) => [j.id, j.state]), [[2, 'running'], [1, 'failed']]);
  assert.equal(activeJobs(jobs).length, 1);
  assert.equal(countAbove([{ confidence: 0.9 }, { confidence: 0.8 }, { confidence: 0.5 }], 0.8), 2);
});
