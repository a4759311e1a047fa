// The virtualised thumbnail grid: only the visible rows are in the DOM; pages of photos are
// fetched on demand and kept in a small LRU cache. Used by Library, Places and the Map panel.
import { computeLayout, visibleItems, cellPosition, pagesFor, scrollToReveal, moveIndex, indexRange, PageCache } from '../lib/virtualgrid.js';
import { h, icon, img, spinner, clear } from './dom.js';
import { thumbUrl } from '../api.js';
import { formatCount, formatClipLength } from '../lib/format.js';

export const DRAG_TYPE = 'application/x-pinpoint-photos';

export class VirtualGrid {
  /**
   * @param {HTMLElement} host
   * @param {object} o fetchPage(offset, limit) → {total, photos}; onFocus(photo); onSelectionChange(ids);
   *   onTotal(total); onOpen(photo); emptyState() → Node; onError(e); pageSize; minCell; selectable; draggable
   */
  constructor(host, o) {
    this.o = { pageSize: 150, minCell: 148, gap: 6, padding: 12, selectable: true, draggable: true, ...o };
    this.cache = new PageCache(this.o.pageSize, 40);
    this.stale = null;
    this.total = null;
    this.gen = 0;
    this.cells = new Map();
    this.selected = new Set();
    this.anchor = -1;
    this.focusIndex = -1;
    this.layout = null;
    this.raf = 0;

    this.el = h('div', { class: 'vgrid', tabindex: '0', role: 'grid', 'aria-multiselectable': 'true' });
    this.sizer = h('div', { class: 'vgrid-sizer' });
    this.overlay = h('div', { class: 'vgrid-overlay' });
    this.el.append(this.sizer, this.overlay);
    host.append(this.el);

    this.el.addEventListener('scroll', () => this.schedule(), { passive: true });
    this.el.addEventListener('click', (e) => this.onClick(e));
    this.el.addEventListener('dblclick', (e) => {
      const i = this.indexOf(e.target);
      const p = i >= 0 ? this.photoAt(i) : null;
      if (p && this.o.onOpen) this.o.onOpen(p);
    });
    this.el.addEventListener('keydown', (e) => this.onKey(e));
    this.el.addEventListener('dragstart', (e) => this.onDragStart(e));
    if (typeof ResizeObserver !== 'undefined') {
      this.ro = new ResizeObserver(() => this.schedule(true));
      this.ro.observe(this.el);
    }
  }

  /** New data source (a new filter): back to the top, empty selection. */
  setSource(fetchPage, { keepSelection = false } = {}) {
    this.o.fetchPage = fetchPage;
    this.gen++;
    this.cache.clear();
    this.stale = null;
    this.total = null;
    this.anchor = -1;
    this.focusIndex = -1;
    if (!keepSelection) this.selected.clear();
    for (const c of this.cells.values()) c.remove();
    this.cells.clear();
    this.el.scrollTop = 0;
    this.showOverlay(spinner('Loading photos…'));
    this.fetchVisible();
    if (!keepSelection) this.emitSelection();
  }

  /** Same source, data changed: refetch what is visible, keep showing the old data meanwhile. */
  refresh() {
    if (!this.o.fetchPage) return;
    this.gen++;
    this.stale = this.cache;
    this.cache = new PageCache(this.o.pageSize, 40);
    this.fetchVisible();
  }

  destroy() {
    this.gen++;
    if (this.ro) this.ro.disconnect();
    this.el.remove();
  }

  showOverlay(node) {
    clear(this.overlay);
    if (node) {
      this.overlay.append(node);
      this.overlay.hidden = false;
    } else this.overlay.hidden = true;
  }

  photoAt(index) {
    return this.cache.get(index) ?? (this.stale ? this.stale.get(index) : undefined);
  }

  getPhotoById(id) {
    const hit = this.cache.find((p) => p.id === id) || (this.stale && this.stale.find((p) => p.id === id));
    return hit ? hit.item : null;
  }

  getSelectedIds() {
    return [...this.selected];
  }

  setSelected(ids) {
    this.selected = new Set(ids);
    this.paintSelection();
    this.emitSelection();
  }

  clearSelection() {
    if (!this.selected.size) return;
    this.selected.clear();
    this.paintSelection();
    this.emitSelection();
  }

  emitSelection() {
    if (this.o.onSelectionChange) this.o.onSelectionChange(this.getSelectedIds());
  }

  focusedPhoto() {
    return this.focusIndex >= 0 ? this.photoAt(this.focusIndex) || null : null;
  }

  schedule(relayout = false) {
    if (relayout) this.layout = null;
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.render();
    });
  }

  computeLayout() {
    const width = this.el.clientWidth;
    this.layout = computeLayout({
      width,
      count: this.total || 0,
      minCell: this.o.minCell,
      gap: this.o.gap,
      padding: this.o.padding,
    });
    this.sizer.style.height = `${this.layout.totalHeight}px`;
    return this.layout;
  }

  fetchVisible() {
    const l = this.layout && this.total !== null ? this.layout : null;
    let pages = [0];
    if (l) {
      const v = visibleItems(l, this.el.scrollTop, this.el.clientHeight, 3);
      pages = pagesFor(v.start, v.end, this.o.pageSize);
      if (!pages.length) pages = [0];
    }
    this.fetchPages(pages);
  }

  fetchPages(pages) {
    for (const p of this.cache.missing(pages)) {
      const gen = this.gen;
      this.cache.pending.add(p);
      const size = this.o.pageSize;
      Promise.resolve()
        .then(() => this.o.fetchPage(p * size, size))
        .then((res) => {
          if (gen !== this.gen) return;
          const photos = Array.isArray(res?.photos) ? res.photos : [];
          const total = Number.isFinite(res?.total) ? res.total : photos.length;
          this.cache.set(p, photos, pages);
          if (total !== this.total) {
            this.total = total;
            this.layout = null;
            if (this.focusIndex >= total) this.focusIndex = -1;
            if (this.o.onTotal) this.o.onTotal(total);
          }
          this.stale = null;
          this.schedule();
        })
        .catch((e) => {
          if (gen !== this.gen) return;
          this.cache.pending.delete(p);
          if (this.total === null) {
            this.showOverlay(h('div', { class: 'empty empty-compact' }, h('p', { class: 'empty-body' }, `Could not load photos: ${e.message || e}`)));
          }
          if (this.o.onError) this.o.onError(e);
        });
    }
  }

  render() {
    if (!this.el.isConnected || this.el.clientWidth === 0) return;
    if (this.total === null) return;
    if (this.total === 0) {
      for (const c of this.cells.values()) c.remove();
      this.cells.clear();
      this.sizer.style.height = '0px';
      this.showOverlay(this.o.emptyState ? this.o.emptyState() : h('div', { class: 'empty empty-compact' }, 'No photos'));
      return;
    }
    if (!this.overlay.hidden) this.showOverlay(null);
    const l = this.layout || this.computeLayout();
    const v = visibleItems(l, this.el.scrollTop, this.el.clientHeight, 2);
    // Drop cells that scrolled away.
    for (const [i, c] of this.cells) {
      if (i < v.start || i >= v.end) {
        c.remove();
        this.cells.delete(i);
      }
    }
    const frag = document.createDocumentFragment();
    for (let i = v.start; i < v.end; i++) {
      const p = this.photoAt(i);
      let c = this.cells.get(i);
      const key = p ? String(p.id) + (p.lat ?? '') + (p.hasProposal ? 'p' : '') + (p.suspicious ? 's' : '') + p.status : '';
      if (!c || c.dataset.key !== key) {
        const next = this.buildCell(i, p, key);
        if (c) c.replaceWith(next);
        else frag.append(next);
        c = next;
        this.cells.set(i, c);
      }
      const pos = cellPosition(l, i);
      const t = `translate(${pos.left}px, ${pos.top}px)`;
      if (c.style.transform !== t) c.style.transform = t;
      const w = `${l.cellWidth}px`;
      if (c.style.width !== w) {
        c.style.width = w;
        c.style.height = `${l.cellHeight}px`;
      }
    }
    if (frag.childNodes.length) this.el.append(frag);
    // Fetch what is missing for a slightly larger window (prefetch while scrolling).
    const ahead = visibleItems(l, this.el.scrollTop, this.el.clientHeight, 6);
    this.fetchPages(pagesFor(ahead.start, ahead.end, this.o.pageSize));
  }

  buildCell(index, p, key) {
    if (!p) {
      return h('div', { class: 'grid-cell is-loading', dataset: { index, key: '' }, 'aria-busy': 'true' });
    }
    const sel = this.selected.has(p.id);
    const badges = h('div', { class: 'cell-badges' });
    if (p.status === 'missing') badges.append(h('span', { class: 'badge badge-missing', title: 'File is missing' }, 'missing'));
    if (p.suspicious) badges.append(h('span', { class: 'badge badge-suspicious', title: 'The GPS tag looks wrong' }, icon('suspicious', 12)));
    if (p.hasProposal) badges.append(h('span', { class: 'badge badge-proposed', title: 'A location is proposed' }, '?'));
    if (p.lat !== null && p.lat !== undefined) badges.append(h('span', { class: 'badge badge-located', title: 'Located' }, icon('pin', 12)));
    const cell = h(
      'div',
      {
        class: ['grid-cell', sel && 'is-selected', index === this.focusIndex && 'is-focused', p.status === 'missing' && 'is-missing'],
        dataset: { id: p.id, index, key },
        role: 'gridcell',
        'aria-selected': sel ? 'true' : 'false',
        title: p.name || p.path || '',
        draggable: this.o.draggable ? 'true' : 'false',
      },
      p.video ? videoTile(p) : img(thumbUrl(p.id), { alt: p.name || '' }),
      badges,
      h('div', { class: 'cell-name' }, p.name || ''),
    );
    return cell;
  }

  paintSelection() {
    for (const [i, c] of this.cells) {
      const id = Number(c.dataset.id);
      const sel = c.dataset.id !== undefined && this.selected.has(id);
      c.classList.toggle('is-selected', sel);
      c.setAttribute('aria-selected', sel ? 'true' : 'false');
      c.classList.toggle('is-focused', i === this.focusIndex);
    }
  }

  indexOf(target) {
    const c = target instanceof Element ? target.closest('.grid-cell') : null;
    return c && c.dataset.index !== undefined ? Number(c.dataset.index) : -1;
  }

  async onClick(e) {
    const i = this.indexOf(e.target);
    if (i < 0) {
      if (e.target === this.el || e.target === this.sizer) this.clearSelection();
      return;
    }
    const p = this.photoAt(i);
    if (!p) return;
    this.el.focus({ preventScroll: true });
    if (!this.o.selectable) {
      this.focusIndex = i;
      this.paintSelection();
      if (this.o.onFocus) this.o.onFocus(p);
      return;
    }
    if (e.shiftKey && this.anchor >= 0) {
      await this.selectRange(this.anchor, i, e.ctrlKey || e.metaKey);
    } else if (e.ctrlKey || e.metaKey) {
      if (this.selected.has(p.id)) this.selected.delete(p.id);
      else this.selected.add(p.id);
      this.anchor = i;
    } else {
      this.selected = new Set([p.id]);
      this.anchor = i;
    }
    this.focusIndex = i;
    this.paintSelection();
    this.emitSelection();
    if (this.o.onFocus) this.o.onFocus(p);
  }

  /** Selects items lo..hi (inclusive), loading ids that are not cached in one call. */
  async selectRange(a, b, additive = false) {
    const [lo, hi] = indexRange(a, b);
    const ids = [];
    let complete = true;
    for (let i = lo; i <= hi; i++) {
      const p = this.photoAt(i);
      if (!p) {
        complete = false;
        break;
      }
      ids.push(p.id);
    }
    if (!complete) {
      const gen = this.gen;
      try {
        const res = await this.o.fetchPage(lo, hi - lo + 1);
        if (gen !== this.gen) return;
        ids.length = 0;
        for (const p of res.photos || []) ids.push(p.id);
      } catch (e) {
        if (this.o.onError) this.o.onError(e);
        return;
      }
    }
    if (!additive) this.selected = new Set();
    for (const id of ids) this.selected.add(id);
  }

  async selectAll() {
    if (!this.total) return;
    if (this.total > 50000) {
      if (this.o.onError) this.o.onError(new Error(`Too many photos to select at once (${formatCount(this.total)}); narrow the filter first.`));
      return;
    }
    await this.selectRange(0, this.total - 1);
    this.paintSelection();
    this.emitSelection();
  }

  async onKey(e) {
    if (!this.total || e.altKey) return;
    const l = this.layout || this.computeLayout();
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'a') {
      e.preventDefault();
      await this.selectAll();
      return;
    }
    if (e.key === 'Escape') {
      if (this.selected.size) {
        e.preventDefault();
        e.stopPropagation();
        this.clearSelection();
      }
      return;
    }
    if (e.key === 'Enter' && this.focusIndex >= 0) {
      const p = this.photoAt(this.focusIndex);
      if (p && this.o.onOpen) {
        e.preventDefault();
        this.o.onOpen(p);
      }
      return;
    }
    const rowsPerPage = Math.max(1, Math.floor(this.el.clientHeight / l.rowHeight));
    const next = moveIndex(this.focusIndex, e.key, l.columns, this.total, rowsPerPage);
    if (next === this.focusIndex || next < 0) {
      if (['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'PageUp', 'PageDown', 'Home', 'End'].includes(e.key)) e.preventDefault();
      return;
    }
    e.preventDefault();
    e.stopPropagation();
    this.focusIndex = next;
    this.el.scrollTop = scrollToReveal(l, next, this.el.scrollTop, this.el.clientHeight);
    if (this.o.selectable) {
      if (e.shiftKey && this.anchor >= 0) await this.selectRange(this.anchor, next);
      else {
        const p = this.photoAt(next);
        this.selected = new Set(p ? [p.id] : []);
        this.anchor = next;
      }
      this.emitSelection();
    }
    this.paintSelection();
    this.render();
    const p = this.photoAt(next);
    if (p && this.o.onFocus) this.o.onFocus(p);
  }

  onDragStart(e) {
    const i = this.indexOf(e.target);
    const p = i >= 0 ? this.photoAt(i) : null;
    if (!p || !this.o.draggable || !e.dataTransfer) {
      e.preventDefault();
      return;
    }
    if (!this.selected.has(p.id)) {
      this.selected = new Set([p.id]);
      this.anchor = i;
      this.focusIndex = i;
      this.paintSelection();
      this.emitSelection();
    }
    const ids = this.getSelectedIds();
    setDragData(e, ids);
  }
}

/** Fills a drag event with photo ids and a compact drag image ("3 photos"). */
export function setDragData(e, ids) {
  e.dataTransfer.effectAllowed = 'copyMove';
  e.dataTransfer.setData(DRAG_TYPE, JSON.stringify(ids));
  e.dataTransfer.setData('text/plain', `pinpoint-photos:${ids.join(',')}`);
  const ghost = h('div', { class: 'drag-ghost' }, icon('pin', 14), ids.length === 1 ? '1 photo' : `${formatCount(ids.length)} photos`);
  document.body.append(ghost);
  try {
    e.dataTransfer.setDragImage(ghost, 12, 12);
  } catch {
    /* not supported: the browser's default image is fine */
  }
  setTimeout(() => ghost.remove(), 0);
}

/** Reads photo ids from a drop event, or null when the drag was not photos. */
export function getDragIds(e) {
  const dt = e.dataTransfer;
  if (!dt) return null;
  let raw = '';
  try {
    raw = dt.getData(DRAG_TYPE);
  } catch {
    raw = '';
  }
  if (raw) {
    try {
      const ids = JSON.parse(raw);
      if (Array.isArray(ids)) return ids.map(Number).filter(Number.isFinite);
    } catch {
      /* fall through */
    }
  }
  const text = dt.getData('text/plain') || '';
  if (text.startsWith('pinpoint-photos:')) {
    return text.slice('pinpoint-photos:'.length).split(',').map(Number).filter(Number.isFinite);
  }
  return null;
}

export function isPhotoDrag(e) {
  const types = e.dataTransfer ? [...e.dataTransfer.types] : [];
  return types.includes(DRAG_TYPE) || types.includes('text/plain');
}

/** A video's cell: its poster frame where one can be made (else, or when it fails, the video
 * icon), with a play mark and its length. */
function videoTile(p) {
  const length = p.durationS === null || p.durationS === undefined ? '' : formatClipLength(p.durationS);
  const label = `Video ${p.name || ''}${length ? `, ${length}` : ''}`;
  const poster = p.poster ? img(thumbUrl(p.id), { alt: '', className: 'video-poster' }) : null;
  return h(
    'div',
    { class: ['thumb', 'video-tile', poster && 'has-poster'], role: 'img', 'aria-label': label },
    icon('video', 40),
    poster,
    h('span', { class: 'video-length' }, icon('video', 12), length),
  );
}
