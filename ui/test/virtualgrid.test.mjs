import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  computeLayout, visibleRows, rowsToItems, visibleItems, cellPosition, pagesFor,
  scrollToReveal, moveIndex, indexRange, PageCache,
} from '../src/lib/virtualgrid.js';

const N = 100_000;

test('layout of 100k photos in a 1000 px wide grid', () => {
  const l = computeLayout({ width: 1000, count: N, minCell: 150, gap: 8, padding: 12 });
  // inner width 976: floor((976 + 8) / 158) = 6 columns
  assert.equal(l.columns, 6);
  assert.equal(l.cellWidth, Math.floor((976 - 5 * 8) / 6)); // 156
  assert.equal(l.rowHeight, 156 + 8);
  assert.equal(l.rows, Math.ceil(N / 6)); // 16667
  assert.equal(l.totalHeight, 24 + 16667 * 164 - 8);
  // Cells fill the row: the last column's right edge stays inside the padding.
  const last = cellPosition(l, 5);
  assert.ok(last.left + l.cellWidth <= 1000 - 12);
});

test('never fewer than one column, even when narrower than a cell', () => {
  const l = computeLayout({ width: 100, count: 10, minCell: 150 });
  assert.equal(l.columns, 1);
  assert.equal(l.rows, 10);
  assert.ok(l.cellWidth >= 1);
});

test('empty grid has no rows and no height', () => {
  const l = computeLayout({ width: 800, count: 0 });
  assert.equal(l.rows, 0);
  assert.equal(l.totalHeight, 0);
  assert.deepEqual(visibleRows(l, 0, 600), { firstRow: 0, lastRow: -1 });
  assert.deepEqual(rowsToItems(l, 0, -1), { start: 0, end: 0 });
});

test('visible range at the top, the middle and the very end of 100k items', () => {
  const l = computeLayout({ width: 1000, count: N, minCell: 150, gap: 8, padding: 12 });
  const top = visibleItems(l, 0, 600, 2);
  assert.equal(top.firstRow, 0);
  // 600 px / 164 px rows → rows 0..3 visible, plus 2 overscan
  assert.equal(top.lastRow, 5);
  assert.deepEqual([top.start, top.end], [0, 36]);

  const mid = visibleItems(l, 50_000 * 164 / 6, 600, 2);
  assert.ok(mid.start <= 50_000 && mid.end > 50_000, `50000 within [${mid.start}, ${mid.end})`);
  assert.ok(mid.end - mid.start <= 6 * 9, 'only a handful of rows are rendered');

  const end = visibleItems(l, l.totalHeight - 600, 600, 2);
  assert.equal(end.lastRow, l.rows - 1);
  assert.equal(end.end, N, 'the last (partial) row is included');
  assert.equal(N % 6, 4);
  assert.equal(end.end - (end.lastRow * 6), 4);

  // Scrolled past the end (elastic scrolling) stays clamped.
  const past = visibleItems(l, l.totalHeight + 5000, 600, 2);
  assert.equal(past.lastRow, l.rows - 1);
  assert.ok(past.firstRow <= past.lastRow);
});

test('pages needed for a range, page boundaries included', () => {
  assert.deepEqual(pagesFor(0, 36, 120), [0]);
  assert.deepEqual(pagesFor(100, 130, 120), [0, 1]);
  assert.deepEqual(pagesFor(239, 240, 120), [1]);
  assert.deepEqual(pagesFor(240, 241, 120), [2]);
  assert.deepEqual(pagesFor(5, 5, 120), []);
  assert.deepEqual(pagesFor(99_990, 100_000, 120), [833]);
});

test('scrollToReveal keeps a focused cell in view', () => {
  const l = computeLayout({ width: 1000, count: N, minCell: 150, gap: 8, padding: 12 });
  assert.equal(scrollToReveal(l, 0, 0, 600), 0, 'already visible');
  const y = scrollToReveal(l, 600, 0, 600); // row 100
  const pos = cellPosition(l, 600);
  assert.equal(y, pos.top + l.cellHeight + 12 - 600);
  const back = scrollToReveal(l, 6, y, 600); // row 1, above the viewport now
  assert.equal(back, cellPosition(l, 6).top - 12);
});

test('keyboard movement is clamped to the grid', () => {
  assert.equal(moveIndex(0, 'ArrowLeft', 6, N), 0);
  assert.equal(moveIndex(0, 'ArrowDown', 6, N), 6);
  assert.equal(moveIndex(N - 2, 'ArrowDown', 6, N), N - 1);
  assert.equal(moveIndex(10, 'End', 6, N), N - 1);
  assert.equal(moveIndex(10, 'Home', 6, N), 0);
  assert.equal(moveIndex(10, 'PageDown', 6, N, 3), 28);
  assert.equal(moveIndex(-1, 'ArrowRight', 6, N), 1);
  assert.equal(moveIndex(3, 'x', 6, N), 3);
  assert.equal(moveIndex(3, 'ArrowDown', 6, 0), -1);
  assert.deepEqual(indexRange(9, 2), [2, 9]);
});

test('page cache evicts least recently used pages but keeps the visible ones', () => {
  const c = new PageCache(10, 3);
  c.set(0, Array.from({ length: 10 }, (_, i) => ({ id: i })));
  c.set(1, Array.from({ length: 10 }, (_, i) => ({ id: 10 + i })));
  c.set(2, Array.from({ length: 10 }, (_, i) => ({ id: 20 + i })));
  assert.equal(c.get(15).id, 15);
  c.touch(0);
  c.set(3, [{ id: 30 }], [1]); // page 1 is visible: keep it; page 2 is the oldest other
  assert.ok(c.has(0) && c.has(1) && c.has(3));
  assert.ok(!c.has(2));
  assert.equal(c.get(25), undefined);
  c.pending.add(5);
  assert.deepEqual(c.missing([0, 2, 5, 6]), [2, 6]);
  assert.deepEqual(c.find((p) => p.id === 30), { index: 30, item: { id: 30 } });
  c.clear();
  assert.equal(c.pages.size, 0);
});
