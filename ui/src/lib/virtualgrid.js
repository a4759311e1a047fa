// Pure math for the virtualised thumbnail grid (no DOM): layout, visible row range, page
// bookkeeping. The DOM side lives in src/ui/grid.js.

/**
 * Lays out `count` square cells in a container `width` px wide.
 * Cells are at least `minCell` px; the columns share the spare width so rows fill the container.
 * Returns { columns, cellWidth, cellHeight, rowHeight, rows, totalHeight, padding, gap }.
 */
export function computeLayout({ width, count, minCell = 150, gap = 8, padding = 12, footer = 0 }) {
  const w = Math.max(0, Number(width) || 0);
  const n = Math.max(0, Math.floor(Number(count) || 0));
  const inner = Math.max(0, w - 2 * padding);
  const columns = Math.max(1, Math.floor((inner + gap) / (minCell + gap)));
  const cellWidth = Math.max(1, Math.floor((inner - gap * (columns - 1)) / columns));
  const cellHeight = cellWidth + footer;
  const rowHeight = cellHeight + gap;
  const rows = Math.ceil(n / columns);
  const totalHeight = rows === 0 ? 0 : 2 * padding + rows * rowHeight - gap;
  return { columns, cellWidth, cellHeight, rowHeight, rows, totalHeight, padding, gap, count: n };
}

/**
 * Rows to render for a scroll position: [firstRow, lastRow] inclusive, with `overscan` extra rows
 * above and below, clamped to the grid. Empty grid → { firstRow: 0, lastRow: -1 }.
 */
export function visibleRows(layout, scrollTop, viewportHeight, overscan = 2) {
  if (!layout || layout.rows === 0) return { firstRow: 0, lastRow: -1 };
  const top = Math.max(0, (Number(scrollTop) || 0) - layout.padding);
  const h = Math.max(0, Number(viewportHeight) || 0);
  let first = Math.floor(top / layout.rowHeight) - overscan;
  let last = Math.floor((top + h) / layout.rowHeight) + overscan;
  first = Math.max(0, Math.min(layout.rows - 1, first));
  last = Math.max(first, Math.min(layout.rows - 1, last));
  return { firstRow: first, lastRow: last };
}

/** Item indices [start, end) covered by rows firstRow..lastRow. */
export function rowsToItems(layout, firstRow, lastRow) {
  if (!layout || lastRow < firstRow) return { start: 0, end: 0 };
  const start = Math.max(0, firstRow * layout.columns);
  const end = Math.min(layout.count, (lastRow + 1) * layout.columns);
  return { start, end: Math.max(start, end) };
}

/** Visible items directly: { start, end, firstRow, lastRow }. */
export function visibleItems(layout, scrollTop, viewportHeight, overscan = 2) {
  const { firstRow, lastRow } = visibleRows(layout, scrollTop, viewportHeight, overscan);
  return { firstRow, lastRow, ...rowsToItems(layout, firstRow, lastRow) };
}

/** Pixel position of cell `index`: { top, left }. */
export function cellPosition(layout, index) {
  const row = Math.floor(index / layout.columns);
  const col = index % layout.columns;
  return {
    top: layout.padding + row * layout.rowHeight,
    left: layout.padding + col * (layout.cellWidth + layout.gap),
  };
}

/** Page indices (of `pageSize` items) needed to show items [start, end). */
export function pagesFor(start, end, pageSize) {
  if (!(pageSize > 0) || end <= start) return [];
  const first = Math.floor(start / pageSize);
  const last = Math.floor((end - 1) / pageSize);
  const out = [];
  for (let p = first; p <= last; p++) out.push(p);
  return out;
}

/**
 * The scrollTop that brings item `index` fully into view, or the current one when it already is.
 */
export function scrollToReveal(layout, index, scrollTop, viewportHeight) {
  if (!layout || layout.rows === 0 || index < 0) return scrollTop;
  const { top } = cellPosition(layout, index);
  const bottom = top + layout.cellHeight;
  if (top - layout.padding < scrollTop) return Math.max(0, top - layout.padding);
  if (bottom + layout.padding > scrollTop + viewportHeight) {
    return Math.max(0, bottom + layout.padding - viewportHeight);
  }
  return scrollTop;
}

/** Index moved by a key in a grid of `columns`, clamped to [0, count). */
export function moveIndex(index, key, columns, count, rowsPerPage = 1) {
  if (count <= 0) return -1;
  let i = index < 0 ? 0 : index;
  switch (key) {
    case 'ArrowLeft': i -= 1; break;
    case 'ArrowRight': i += 1; break;
    case 'ArrowUp': i -= columns; break;
    case 'ArrowDown': i += columns; break;
    case 'PageUp': i -= columns * Math.max(1, rowsPerPage); break;
    case 'PageDown': i += columns * Math.max(1, rowsPerPage); break;
    case 'Home': i = 0; break;
    case 'End': i = count - 1; break;
    default: return index;
  }
  return Math.max(0, Math.min(count - 1, i));
}

/** Inclusive index range between an anchor and a target, as [lo, hi]. */
export function indexRange(a, b) {
  return a <= b ? [a, b] : [b, a];
}

/**
 * Pages of a result set kept in memory, least recently used dropped first, with in-flight
 * requests tracked so a page is never asked for twice at once.
 */
export class PageCache {
  constructor(pageSize = 120, maxPages = 60) {
    this.pageSize = pageSize;
    this.maxPages = maxPages;
    this.pages = new Map(); // page index → array of items
    this.pending = new Set();
    this.total = null;
  }

  clear() {
    this.pages.clear();
    this.pending.clear();
    this.total = null;
  }

  has(page) {
    return this.pages.has(page);
  }

  /** Stores a page and trims the cache, never dropping pages listed in `keep`. */
  set(page, items, keep = []) {
    this.pending.delete(page);
    this.pages.delete(page);
    this.pages.set(page, items);
    if (this.pages.size > this.maxPages) {
      const keepSet = new Set(keep);
      for (const key of this.pages.keys()) {
        if (this.pages.size <= this.maxPages) break;
        if (!keepSet.has(key) && key !== page) this.pages.delete(key);
      }
    }
  }

  /** The item at a global index, or undefined when its page is not loaded. Marks the page used. */
  get(index) {
    const p = Math.floor(index / this.pageSize);
    const items = this.pages.get(p);
    if (!items) return undefined;
    return items[index - p * this.pageSize];
  }

  touch(page) {
    const items = this.pages.get(page);
    if (items) {
      this.pages.delete(page);
      this.pages.set(page, items);
    }
  }

  /** Pages among `wanted` that are neither loaded nor being loaded. */
  missing(wanted) {
    return wanted.filter((p) => !this.pages.has(p) && !this.pending.has(p));
  }

  /** Finds a loaded item by predicate: { index, item } or null. */
  find(pred) {
    for (const [p, items] of this.pages) {
      for (let i = 0; i < items.length; i++) {
        if (pred(items[i])) return { index: p * this.pageSize + i, item: items[i] };
      }
    }
    return null;
  }
}
