// Pure state helpers (no DOM): the library filter, its serialisation to the URL hash, the route,
// a tiny observable store and the session's undo stack.

export const FILTER_KINDS = ['all', 'untagged', 'tagged', 'proposed', 'suspicious', 'missing'];
export const SOURCES = ['exif', 'sidecar', 'user', 'proposal'];
export const VIEWS = ['library', 'map', 'review', 'suspicious', 'places', 'jobs', 'settings'];

/** The filter that shows everything. */
export function defaultFilter() {
  return { kind: 'all', source: null, place: null, ids: null };
}

/** Cleans any object into a valid filter (unknown kinds fall back to "all"). */
export function normalizeFilter(f) {
  const out = defaultFilter();
  if (!f || typeof f !== 'object') return out;
  if (FILTER_KINDS.includes(f.kind)) out.kind = f.kind;
  if (typeof f.source === 'string' && f.source) out.source = f.source;
  if (f.place && typeof f.place === 'object' && typeof f.place.cc === 'string' && f.place.cc) {
    out.place = {
      cc: f.place.cc,
      region: typeof f.place.region === 'string' && f.place.region ? f.place.region : null,
      city: typeof f.place.city === 'string' && f.place.city ? f.place.city : null,
    };
    if (!out.place.region) out.place.city = null;
  }
  if (Array.isArray(f.ids)) {
    out.ids = f.ids.map(Number).filter((x) => Number.isInteger(x) && x >= 0);
  }
  return out;
}

/** The exact `filter` argument of listPhotos. */
export function filterToApi(f) {
  const n = normalizeFilter(f);
  return { kind: n.kind, source: n.source, place: n.place, ids: n.ids };
}

/** "kind=untagged&source=exif&cc=FR&region=…&city=…" (ids are never put in the URL). */
export function serializeFilter(f) {
  const n = normalizeFilter(f);
  const p = new URLSearchParams();
  if (n.kind !== 'all') p.set('kind', n.kind);
  if (n.source) p.set('source', n.source);
  if (n.place) {
    p.set('cc', n.place.cc);
    if (n.place.region) p.set('region', n.place.region);
    if (n.place.city) p.set('city', n.place.city);
  }
  return p.toString();
}

/** Inverse of serializeFilter; tolerant of junk. */
export function parseFilter(query) {
  const p = new URLSearchParams(typeof query === 'string' ? query.replace(/^\?/, '') : '');
  return normalizeFilter({
    kind: p.get('kind') || 'all',
    source: p.get('source'),
    place: p.get('cc') ? { cc: p.get('cc'), region: p.get('region'), city: p.get('city') } : null,
  });
}

/** A stable key for caching results per filter. */
export function filterKey(f) {
  const n = normalizeFilter(f);
  return JSON.stringify([n.kind, n.source, n.place && [n.place.cc, n.place.region, n.place.city], n.ids]);
}

export function filtersEqual(a, b) {
  return filterKey(a) === filterKey(b);
}

/** "#/library?kind=untagged" → { view: "library", query: "kind=untagged" }. */
export function parseRoute(hash) {
  const h = String(hash || '').replace(/^#\/?/, '');
  const [view, query = ''] = h.split('?');
  return { view: VIEWS.includes(view) ? view : 'library', query };
}

export function formatRoute(view, query = '') {
  return `#/${VIEWS.includes(view) ? view : 'library'}${query ? '?' + query : ''}`;
}

/** The view bound to a digit key "1".."7", or null. */
export function viewForKey(key) {
  const i = Number(key) - 1;
  return Number.isInteger(i) && i >= 0 && i < VIEWS.length && /^[1-7]$/.test(key) ? VIEWS[i] : null;
}

/** A minimal observable store: get(), set(patch), subscribe(fn) → unsubscribe. */
export function createStore(initial = {}) {
  let state = { ...initial };
  const subs = new Set();
  return {
    get: () => state,
    set(patch) {
      const next = typeof patch === 'function' ? patch(state) : patch;
      const changed = Object.keys(next).filter((k) => state[k] !== next[k]);
      if (!changed.length) return;
      state = { ...state, ...next };
      for (const fn of [...subs]) fn(state, changed);
    },
    subscribe(fn) {
      subs.add(fn);
      return () => subs.delete(fn);
    },
  };
}

/** The session's own undoable actions (each an edit batch), newest last. */
export class UndoStack {
  constructor(limit = 100) {
    this.limit = limit;
    this.items = [];
  }
  push(entry) {
    if (!entry || entry.batchId === undefined || entry.batchId === null) return false;
    this.items.push(entry);
    if (this.items.length > this.limit) this.items.shift();
    return true;
  }
  pop() {
    return this.items.pop() || null;
  }
  /** Removes a batch that was undone elsewhere (toast, history). */
  remove(batchId) {
    const i = this.items.findIndex((e) => e.batchId === batchId);
    if (i >= 0) this.items.splice(i, 1);
    return i >= 0;
  }
  peek() {
    return this.items[this.items.length - 1] || null;
  }
  get size() {
    return this.items.length;
  }
}

/** Which jobs count as running for the status bar. */
export function activeJobs(jobs) {
  return jobs.filter((j) => j && (j.state === 'running' || j.state === 'queued' || j.state === 'paused'));
}

/** Merges a job event into the newest-first list, replacing the job with the same id. */
export function upsertJob(jobs, job) {
  if (!job || job.id === undefined) return jobs;
  const i = jobs.findIndex((j) => j.id === job.id);
  if (i === -1) return [job, ...jobs];
  const next = jobs.slice();
  next[i] = job;
  return next;
}

/** Proposals at or above a confidence (0..1). */
export function countAbove(proposals, min) {
  let n = 0;
  for (const p of proposals) if (p.confidence >= min - 1e-9) n++;
  return n;
}
