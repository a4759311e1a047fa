// App shell: navigation, status bar, jobs feed, catalog-changed fan-out, keyboard, undo helpers.
import * as api from './api.js';
import { h, icon, setChildren, isTyping, spinner, emptyState } from './ui/dom.js';
import { toast, toastError } from './ui/toast.js';
import { setTiles } from './ui/maps.js';
import { createStore, parseRoute, formatRoute, viewForKey, upsertJob, activeJobs, UndoStack, VIEWS } from './lib/state.js';
import { formatCount, formatProgress, formatEta, formatJobKind, plural } from './lib/format.js';

const factories = {
  library: () => import('./views/library.js'),
  map: () => import('./views/map.js'),
  review: () => import('./views/review.js'),
  suspicious: () => import('./views/suspicious.js'),
  places: () => import('./views/places.js'),
  jobs: () => import('./views/jobs.js'),
  settings: () => import('./views/settings.js'),
};

const store = createStore({ overview: null, jobs: [], selection: [], view: null });
const views = new Map(); // name → { el, instance, stale: Set }
const lastQuery = {}; // the library's filter survives a trip to another view
let current = null;

const app = {
  api,
  store,
  toast,
  toastError,
  undoStack: new UndoStack(),

  /** Switches view; `query` is the view's own part of the URL (e.g. library filter). */
  navigate(view, query = '') {
    const hash = formatRoute(view, query);
    if (location.hash === hash) route();
    else location.hash = hash;
  },

  /** Replaces the URL query of the current view without re-rendering it. */
  replaceQuery(view, query) {
    if (view === 'library') lastQuery[view] = query;
    const hash = formatRoute(view, query);
    if (location.hash !== hash) history.replaceState(null, '', hash);
  },

  async refreshOverview() {
    try {
      const ov = await api.overview();
      store.set({ overview: ov });
      if (ov && ov.tiles) setTiles(ov.tiles);
      return ov;
    } catch (e) {
      setChildren(document.getElementById('status-counts'), h('span', { class: 'status-error' }, `Catalog unavailable: ${e.message}`));
      throw e;
    }
  },

  /** Runs an edit that returns { batchId }, toasts `message` with Undo, remembers it for Undo. */
  async edit(run, message, { onUndone, revert } = {}) {
    const res = await run();
    const batchId = res && res.batchId !== undefined ? res.batchId : null;
    if (batchId === null && revert) {
      // A decision that wrote no file (reject, keep): undone by its own inverse command.
      const t = toast(message, {
        kind: 'success',
        action: {
          label: 'Undo',
          icon: 'undo',
          run: async () => {
            try {
              await revert();
              t.close();
              toast('Undone', { kind: 'info' });
              if (onUndone) onUndone();
            } catch (e) {
              toastError(e, 'Undo failed');
            }
          },
        },
      });
      app.lastRevert = { revert, onUndone };
      return res;
    }
    if (batchId !== null) {
      const entry = { batchId, label: message, onUndone, toast: null };
      app.undoStack.push(entry);
      entry.toast = toast(message, {
        kind: 'success',
        action: { label: 'Undo', icon: 'undo', run: () => app.undoBatch(batchId, onUndone) },
      });
    } else toast(message, { kind: 'success' });
    return res;
  },

  /** Undoes one batch (null: the latest undoable one). */
  async undoBatch(batchId = null, onUndone) {
    try {
      const res = await api.undo(batchId);
      const undone = res && res.batchId !== undefined ? res.batchId : batchId;
      // Forget the batch and close its (now stale) "Undo" toast.
      const entry = app.undoStack.items.find((e) => e.batchId === undone || e.batchId === batchId);
      if (entry && entry.toast) entry.toast.close();
      if (batchId !== null) app.undoStack.remove(batchId);
      if (undone !== null && undone !== undefined) app.undoStack.remove(undone);
      const n = res && Number.isFinite(res.restored) ? res.restored : null;
      toast(n === null ? 'Undone' : `Undone: ${plural(n, 'photo')} restored`, { kind: 'info' });
      if (onUndone) onUndone(res);
      return res;
    } catch (e) {
      toastError(e, 'Undo failed');
      return null;
    }
  },

  /** Undo for the session's latest action (or the catalog's latest batch when there is none). */
  async undoLast() {
    const entry = app.undoStack.peek();
    return app.undoBatch(entry ? entry.batchId : null, entry ? entry.onUndone : undefined);
  },

  setSelection(ids) {
    store.set({ selection: ids });
  },
};
window.pinpoint = app; // handy in the devtools console

// ---------- Views ----------
async function route() {
  const { view, query } = parseRoute(location.hash);
  if (view === 'library') lastQuery[view] = query;
  const prev = current;
  current = view;
  for (const btn of document.querySelectorAll('.nav-btn')) {
    const on = btn.dataset.view === view;
    btn.classList.toggle('is-active', on);
    if (on) btn.setAttribute('aria-current', 'page');
    else btn.removeAttribute('aria-current');
  }
  for (const sec of document.querySelectorAll('#content > .view')) sec.hidden = sec.dataset.view !== view;
  store.set({ view });
  if (prev && prev !== view) views.get(prev)?.instance?.hide?.();

  let v = views.get(view);
  if (!v) {
    const el = document.querySelector(`#content > .view[data-view="${view}"]`);
    v = { el, instance: null, stale: new Set(), loading: null };
    views.set(view, v);
    setChildren(el, spinner('Loading…'));
    v.loading = factories[view]()
      .then((mod) => {
        setChildren(el);
        v.instance = mod.default(app, el);
      })
      .catch((e) => {
        console.error(e);
        setChildren(el, emptyState({ icon: 'suspicious', title: 'This view failed to load', body: e.message || String(e) }));
      });
  }
  await v.loading;
  if (current !== view || !v.instance) return;
  try {
    if (v.stale.size && v.instance.refresh) v.instance.refresh(new Set(v.stale));
    v.stale.clear();
    v.instance.show?.(query);
  } catch (e) {
    toastError(e);
  }
}

// ---------- Status bar & badges ----------
function renderOverview(ov) {
  const el = document.getElementById('status-counts');
  if (!ov) return;
  const c = ov.counts || {};
  const parts = [
    [plural(c.total ?? 0, 'photo'), ''],
    [`${formatCount(c.tagged ?? 0)} located`, 'ok'],
    [`${formatCount(c.untagged ?? 0)} untagged`, ''],
    [`${formatCount(c.proposed ?? 0)} to review`, c.proposed ? 'accent' : ''],
    [`${formatCount(c.suspicious ?? 0)} suspicious`, c.suspicious ? 'warn' : ''],
  ];
  if (c.missing) parts.push([`${formatCount(c.missing)} missing`, 'muted']);
  setChildren(el, parts.map(([t, k], i) => [i ? h('span', { class: 'status-sep' }, '·') : null, h('span', { class: k ? `status-${k}` : '' }, t)]));
  badge('review', c.proposed);
  badge('suspicious', c.suspicious);
}

function badge(view, n) {
  const b = document.querySelector(`#nav-${view} .nav-badge`);
  if (!b) return;
  if (n && n > 0) {
    b.hidden = false;
    b.textContent = n > 9999 ? `${Math.floor(n / 1000)}k` : formatCount(n);
  } else b.hidden = true;
}

function renderJobsIndicator(jobs) {
  const el = document.getElementById('status-jobs');
  const active = activeJobs(jobs);
  badge('jobs', active.length);
  if (!active.length) {
    el.hidden = true;
    return;
  }
  const j = active.find((x) => x.state === 'running') || active[0];
  const frac = j.total ? Math.min(1, j.done / j.total) : null;
  el.hidden = false;
  el.title = 'Show jobs (6)';
  setChildren(
    el,
    h('span', { class: ['status-job-dot', `state-${j.state}`] }),
    h('span', { class: 'status-job-title' }, j.title || formatJobKind(j.kind)),
    j.stage ? h('span', { class: 'status-job-stage' }, j.stage) : null,
    h('span', { class: 'status-job-progress' }, formatProgress(j.done, j.total)),
    h('span', { class: 'mini-bar' }, h('span', { class: ['mini-bar-fill', frac === null && 'is-indeterminate'], style: { width: frac === null ? '40%' : `${(frac * 100).toFixed(1)}%` } })),
    j.state === 'paused' ? h('span', { class: 'status-job-eta' }, 'paused') : j.etaS ? h('span', { class: 'status-job-eta' }, formatEta(j.etaS)) : null,
    active.length > 1 ? h('span', { class: 'status-job-more' }, `+${active.length - 1}`) : null,
  );
}

store.subscribe((s, changed) => {
  if (changed.includes('overview')) renderOverview(s.overview);
  if (changed.includes('jobs')) renderJobsIndicator(s.jobs);
});

// ---------- Events ----------
const pendingWhat = new Set();
let flushTimer = null;
function onCatalogChanged(payload) {
  pendingWhat.add((payload && payload.what) || 'photos');
  if (flushTimer) return;
  flushTimer = setTimeout(flushCatalogChanges, 400);
}
function flushCatalogChanges() {
  flushTimer = null;
  const what = new Set(pendingWhat);
  pendingWhat.clear();
  app.refreshOverview().catch(() => {});
  for (const [name, v] of views) {
    if (!v.instance) continue;
    if (name === current) {
      try {
        v.instance.refresh?.(what);
      } catch (e) {
        console.error(e);
      }
    } else for (const w of what) v.stale.add(w);
  }
}

function onJob(job) {
  if (!job || job.id === undefined) return;
  const prev = store.get().jobs.find((j) => j.id === job.id);
  store.set({ jobs: upsertJob(store.get().jobs, job) });
  if (prev && prev.state !== job.state) {
    const name = job.title || formatJobKind(job.kind);
    if (job.state === 'failed') toast(`${name} failed${job.message ? ': ' + job.message : ''}`, { kind: 'error' });
    else if (job.state === 'done') {
      const errs = job.errors && job.errors.length ? ` (${plural(job.errors.length, 'file')} with errors)` : '';
      toast(`${name} finished${errs}`, { kind: errs ? 'info' : 'success' });
      app.refreshOverview().catch(() => {});
    }
  }
}

// ---------- Keyboard & global guards ----------
document.addEventListener('keydown', (e) => {
  if (document.querySelector('.modal-overlay')) return;
  if (isTyping(e)) {
    if (e.key === 'Escape') e.target.blur();
    return;
  }
  if (!e.ctrlKey && !e.metaKey && !e.altKey) {
    const v = viewForKey(e.key);
    if (v) {
      e.preventDefault();
      app.navigate(v, lastQuery[v] || '');
      return;
    }
  }
  const inst = views.get(current)?.instance;
  if (inst && inst.onKey) {
    try {
      if (inst.onKey(e)) e.preventDefault();
    } catch (err) {
      toastError(err);
    }
  }
});

// Links (tile attributions) must not navigate the app window away.
document.addEventListener('click', (e) => {
  const a = e.target instanceof Element ? e.target.closest('a[href]') : null;
  if (a && /^https?:/i.test(a.getAttribute('href') || '')) {
    e.preventDefault();
    toast(`Link: ${a.getAttribute('href')}`, { kind: 'info' });
  }
});

// Files dropped outside a drop target must not replace the page.
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => e.preventDefault());

// ---------- Start ----------
function initShell() {
  for (const span of document.querySelectorAll('[data-icon]')) span.replaceWith(icon(span.dataset.icon, 18));
  for (const btn of document.querySelectorAll('.nav-btn')) {
    btn.addEventListener('click', () => app.navigate(btn.dataset.view, lastQuery[btn.dataset.view] || ''));
    // Spring-loaded Map button: hovering a photo drag over it opens the map to drop on.
    if (btn.dataset.view === 'map') {
      let t = null;
      btn.addEventListener('dragenter', () => {
        clearTimeout(t);
        t = setTimeout(() => app.navigate('map'), 500);
      });
      btn.addEventListener('dragleave', () => clearTimeout(t));
      btn.addEventListener('drop', () => clearTimeout(t));
    }
  }
  document.getElementById('status-jobs').addEventListener('click', () => app.navigate('jobs'));
  window.addEventListener('hashchange', route);
}

async function start() {
  initShell();
  if (!VIEWS.includes(parseRoute(location.hash).view) || !location.hash) history.replaceState(null, '', formatRoute('library'));
  route();
  if (!api.isAvailable()) {
    setChildren(document.getElementById('status-counts'), h('span', { class: 'status-error' }, 'Engine not connected — open Pinpoint from the desktop app.'));
    return;
  }
  api.listen('job', onJob);
  api.listen('catalog-changed', onCatalogChanged);
  app.refreshOverview().catch((e) => toastError(e, 'Could not open the catalog'));
  try {
    const jobs = await api.jobs();
    store.set({ jobs: Array.isArray(jobs) ? jobs : [] });
  } catch (e) {
    console.error('jobs', e);
  }
}

start();
