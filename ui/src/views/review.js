// Review: one pending proposal at a time — accept (optionally after dragging the pin), reject,
// skip, undo — plus "Accept all ≥ N%".
import * as api from '../api.js';
import { h, icon, img, setChildren, emptyState, spinner } from '../ui/dom.js';
import { confirmDialog } from '../ui/toast.js';
import { createMap, pinIcon, refreshSize, contextZoom } from '../ui/maps.js';
import { evidenceStrip, evidenceMarkers, highlightMarker } from './evidence.js';
import { countAbove } from '../lib/state.js';
import { formatPercent, formatCoord, formatDistance, formatCount, plural, shortenPath } from '../lib/format.js';
import { lonNear, normalizeLon } from '../lib/geo.js';

const SOURCE_LABEL = { visual: 'Looks like', time: 'Time', gpx: 'GPX track' };

export default function createReview(app, root) {
  const L = window.L;
  let queue = [];
  let index = 0;
  let loaded = false;
  let busy = false;
  let map = null;
  let layer = null;
  let pin = null;
  let moved = null; // {lat, lon} when the user dragged the pin
  let evMarkers = [];
  let focusId = null;
  let threshold = 90;
  let heat = false; // showing what the model looks at instead of the photo

  // ---- Batch bar ----
  const slider = h('input', { id: 'review-threshold', type: 'range', min: '50', max: '99', step: '1', value: String(threshold), 'aria-label': 'Confidence threshold' });
  const sliderVal = h('span', { class: 'threshold-val' });
  const acceptAboveBtn = h('button', { id: 'review-accept-above', class: 'btn', onclick: () => acceptAbove() });
  slider.addEventListener('input', () => {
    threshold = Number(slider.value);
    paintBatch();
  });
  const queueInfo = h('span', { class: 'toolbar-count', id: 'review-count' });
  const header = h(
    'header',
    { class: 'view-header' },
    h('h1', { class: 'view-title' }, 'Review'),
    queueInfo,
    h('span', { class: 'spacer' }),
    h('div', { class: 'batch-bar' }, h('label', { for: 'review-threshold', class: 'muted' }, 'Confidence'), slider, sliderVal, acceptAboveBtn),
  );
  const body = h('div', { class: 'review-body' });
  root.append(header, body);

  function paintBatch() {
    sliderVal.textContent = `${threshold}%`;
    const n = countAbove(queue, threshold / 100);
    acceptAboveBtn.textContent = `Accept all ≥ ${threshold}%${loaded ? ` (${formatCount(n)})` : ''}`;
    acceptAboveBtn.disabled = !n;
  }

  // ---- Layout (built once, filled per proposal) ----
  const photoBox = h('div', { class: 'review-photo' });
  const photoCaption = h('div', { class: 'review-caption' });
  const heatBtn = h(
    'button',
    { id: 'review-heat', class: 'btn btn-ghost btn-small', title: 'What the model looks at: its CRN weights over the photo (H)', onclick: () => toggleHeat() },
    'What the model sees',
    h('kbd', {}, 'H'),
  );
  /** The model's CRN heat map can be shown when the catalog's model has CRN (a fine-tuned one). */
  function heatModel() {
    const m = app.store.get().overview?.model;
    return m && m.crn ? m : null;
  }
  function toggleHeat() {
    if (!heatModel() || !current()) return;
    heat = !heat;
    paintPhoto(current());
  }
  function paintPhoto(p) {
    const m = heatModel();
    heatBtn.hidden = !m;
    heatBtn.classList.toggle('is-active', heat && !!m);
    heatBtn.setAttribute('aria-pressed', String(heat && !!m));
    const src = heat && m ? api.explainUrl(p.photoId, m.hash) : api.previewUrl(p.photoId);
    const alt = heat && m ? `What the model looks at in ${p.name}` : p.name;
    setChildren(photoBox, img(src, { alt, lazy: false, className: heat && m ? 'review-img review-heat' : 'review-img' }));
    setChildren(
      photoCaption,
      h('strong', { title: p.name }, p.name),
      h('span', { class: 'muted', title: p.path }, heat && m ? 'yellow: counts most for the place · blue: ignored' : shortenPath(p.path, 70)),
      h('span', { class: 'spacer' }),
      heatBtn,
    );
  }
  const confBox = h('div', { class: 'review-confidence' });
  const mapEl = h('div', { id: 'review-map', class: 'review-map' });
  const coordsBox = h('div', { class: 'review-coords' });
  const btn = (id, label, key, cls, onclick, ic) =>
    h('button', { id, class: ['btn', cls], onclick, title: `${label} (${key})` }, ic ? icon(ic, 16) : null, label, h('kbd', {}, key));
  const acceptBtn = btn('review-accept', 'Accept', 'A', 'btn-primary', () => accept(), 'check');
  const rejectBtn = btn('review-reject', 'Reject', 'R', 'btn-danger-ghost', () => reject(), 'x');
  const skipBtn = btn('review-skip', 'Skip', 'S', '', () => skip(1), 'chevron');
  const undoBtn = btn('review-undo', 'Undo', 'U', 'btn-ghost', () => undo(), 'undo');
  const posBox = h('span', { class: 'review-pos muted', id: 'review-position' });
  const side = h(
    'div',
    { class: 'review-side' },
    confBox,
    h('div', { class: 'review-map-wrap' }, mapEl, h('div', { class: 'map-hint' }, 'Drag the pin to adjust')),
    coordsBox,
    h('div', { class: 'review-actions' }, acceptBtn, rejectBtn, skipBtn, undoBtn),
  );
  const evBox = h('div', { class: 'review-evidence' });
  const content = h('div', { class: 'review-content' }, h('div', { class: 'review-main' }, h('div', { class: 'review-photo-col' }, photoBox, photoCaption), side), evBox);

  function current() {
    return queue[index] || null;
  }

  async function load({ focus = null } = {}) {
    if (!loaded) setChildren(body, spinner('Loading proposals…'));
    try {
      const list = await api.reviewQueue(0);
      queue = (Array.isArray(list) ? list : []).filter((p) => !p.status || p.status === 'pending');
      loaded = true;
      const want = focus ?? focusId ?? current()?.photoId ?? null;
      const i = want !== null ? queue.findIndex((p) => p.photoId === want) : -1;
      index = i >= 0 ? i : Math.min(index, Math.max(0, queue.length - 1));
      render();
    } catch (e) {
      setChildren(body, emptyState({ icon: 'suspicious', title: 'Could not load proposals', body: e.message, actions: [h('button', { class: 'btn', onclick: () => load() }, 'Try again')] }));
    }
    paintBatch();
  }

  function render() {
    const p = current();
    const total = queue.length;
    queueInfo.textContent = loaded ? (total ? `${plural(total, 'proposal')} waiting` : '') : '';
    if (!p) {
      undoBtn.disabled = false;
      setChildren(
        body,
        emptyState({
          icon: 'review',
          title: 'Nothing to review',
          body: 'Proposals appear here after Pinpoint compares your untagged photos with your located ones and the reference databases. Run Update in Jobs to get proposals.',
          actions: [
            h('button', { class: 'btn btn-primary', onclick: () => app.navigate('jobs') }, 'Open Jobs'),
            h('button', { id: 'review-undo', class: 'btn btn-ghost', onclick: () => undo() }, icon('undo', 16), 'Undo last'),
          ],
        }),
      );
      return;
    }
    if (!content.isConnected) setChildren(body, content);
    focusId = p.photoId;
    moved = null;

    // Photo (or what the model looks at in it).
    paintPhoto(p);

    // Confidence.
    const conf = Number.isFinite(p.confidence) ? p.confidence : 0;
    const level = conf >= 0.85 ? 'high' : conf >= 0.6 ? 'mid' : 'low';
    setChildren(
      confBox,
      h('div', { class: 'conf-row' }, h('span', { class: ['conf-value', `conf-${level}`], id: 'review-confidence' }, formatPercent(conf)), h('span', { class: 'muted' }, 'confidence'), h('span', { class: 'spacer' }), posBox),
      h('div', { class: 'bar' }, h('span', { class: ['bar-fill', `conf-${level}`], style: { width: `${(conf * 100).toFixed(1)}%` } })),
      h('div', { class: 'chips' }, (p.sources || []).map((s) => h('span', { class: 'chip' }, SOURCE_LABEL[s] || s))),
    );

    paintCoords(p);
    setChildren(posBox, `${formatCount(index + 1)} of ${formatCount(total)}`);
    setChildren(
      evBox,
      evidenceStrip(p.evidence, {
        onHover: (i) => highlightMarker(evMarkers, i),
        onPick: (i) => {
          const ev = p.evidence[i];
          if (map && ev && Number.isFinite(ev.lat)) map.panTo([ev.lat, lonNear(ev.lon, p.lon)]);
        },
      }),
    );
    drawMap(p);
    [acceptBtn, rejectBtn, skipBtn].forEach((b) => (b.disabled = busy));
    skipBtn.disabled = busy || total < 2;

    // Preload the next preview so the next proposal appears at once.
    const next = queue[(index + 1) % total];
    if (next && next !== p) {
      const im = new Image();
      im.src = api.previewUrl(next.photoId);
    }
  }

  function paintCoords(p) {
    const lat = moved ? moved.lat : p.lat;
    const lon = moved ? moved.lon : p.lon;
    setChildren(
      coordsBox,
      h('span', {}, icon('pin', 14), formatCoord(lat, lon, 4)),
      p.radiusM ? h('span', { class: 'muted' }, `within ${formatDistance(p.radiusM)}`) : null,
      moved ? h('button', { class: 'btn btn-ghost btn-small', onclick: () => resetPin() }, 'Reset pin') : null,
    );
  }

  function drawMap(p) {
    if (!L) return;
    if (!map) {
      try {
        map = createMap(mapEl, { minimap: false, labels: false, center: [p.lat, p.lon], zoom: 10 });
      } catch (e) {
        console.error(e);
        return;
      }
      layer = L.layerGroup().addTo(map);
    }
    layer.clearLayers();
    const center = [p.lat, p.lon];
    const pts = [center];
    if (p.radiusM) L.circle(center, { radius: p.radiusM, color: '#f0b429', weight: 1.5, fillColor: '#f0b429', fillOpacity: 0.12, interactive: false }).addTo(layer);
    evMarkers = evidenceMarkers(L, layer, (p.evidence || []).map((ev) => (Number.isFinite(ev.lon) ? { ...ev, lon: lonNear(ev.lon, p.lon) } : ev)));
    for (const m of evMarkers) if (m) pts.push(m.getLatLng());
    pin = L.marker(center, { icon: pinIcon('proposal'), draggable: true, autoPan: true, keyboard: false, title: 'Drag to adjust' }).addTo(layer);
    pin.on('dragend', () => {
      const ll = pin.getLatLng();
      moved = { lat: ll.lat, lon: normalizeLon(ll.lng) };
      paintCoords(p);
    });
    requestAnimationFrame(() => {
      map.invalidateSize({ pan: false });
      const b = L.latLngBounds(pts);
      if (p.radiusM) b.extend(L.latLng(p.lat, p.lon).toBounds(p.radiusM * 2));
      map.fitBounds(b, { padding: [28, 28], maxZoom: contextZoom(14), animate: false });
    });
  }

  function resetPin() {
    const p = current();
    if (!p || !pin) return;
    moved = null;
    pin.setLatLng([p.lat, p.lon]);
    paintCoords(p);
  }

  function removeCurrent() {
    queue.splice(index, 1);
    if (index >= queue.length) index = 0;
    focusId = current()?.photoId ?? null;
    render();
    paintBatch();
  }

  async function act(fn) {
    if (busy || !current()) return;
    busy = true;
    [acceptBtn, rejectBtn].forEach((b) => (b.disabled = true));
    try {
      await fn(current());
    } catch (e) {
      app.toastError(e);
    } finally {
      busy = false;
      if (current()) [acceptBtn, rejectBtn].forEach((b) => (b.disabled = false));
    }
  }

  const accept = () =>
    act(async (p) => {
      const lat = moved ? moved.lat : null;
      const lon = moved ? moved.lon : null;
      await app.edit(() => api.acceptProposal(p.photoId, lat, lon), `Accepted: ${p.name}${moved ? ' (adjusted)' : ''}`, {
        onUndone: () => load({ focus: p.photoId }),
      });
      lastReject = null;
      removeCurrent();
    });

  const reject = () =>
    act(async (p) => {
      await app.edit(() => api.rejectProposal(p.photoId), `Rejected: ${p.name} — it will not be proposed there again`, {
        revert: () => api.reopenProposal(p.photoId),
        onUndone: () => load({ focus: p.photoId }),
      });
      lastReject = p.photoId;
      removeCurrent();
    });

  function skip(step) {
    if (queue.length < 2) return;
    index = (index + step + queue.length) % queue.length;
    render();
  }

  // The last review decision, when it was a reject (which writes no file, so has no journal batch).
  let lastReject = null;

  async function undo() {
    if (lastReject !== null) {
      const id = lastReject;
      lastReject = null;
      try {
        await api.reopenProposal(id);
        app.toast('Undone: the proposal is back in the queue', { kind: 'info' });
        load({ focus: id });
      } catch (e) {
        app.toastError(e, 'Undo failed');
      }
      return;
    }
    const entry = app.undoStack.peek();
    const res = await app.undoLast();
    if (res && !entry) load();
  }

  async function acceptAbove() {
    const t = threshold / 100;
    const n = countAbove(queue, t);
    if (!n) return;
    const ok = await confirmDialog({
      title: `Accept ${plural(n, 'proposal')} at ${threshold}% or more?`,
      body: 'Their locations are written to the photos (or sidecars) in the background. You can undo the whole batch afterwards from the toast or Settings → History.',
      confirmLabel: `Accept ${formatCount(n)}`,
    });
    if (!ok) return;
    try {
      const job = await api.acceptAbove(t);
      if (job && job.id !== undefined) {
        const jobs = app.store.get().jobs.filter((j) => j.id !== job.id);
        app.store.set({ jobs: [job, ...jobs] });
      }
      queue = queue.filter((p) => p.confidence < t - 1e-9);
      index = 0;
      render();
      paintBatch();
      app.toast(`Writing ${plural(n, 'location')} — see Jobs for progress`, {
        kind: 'success',
        action: {
          label: 'Undo',
          icon: 'undo',
          run: async () => {
            const j = app.store.get().jobs.find((x) => job && x.id === job.id);
            if (j && !['done', 'failed', 'cancelled'].includes(j.state)) {
              app.toast('The write job is still running. Undo it from Settings → History once it has finished.', { kind: 'info' });
              return;
            }
            await app.undoBatch(null, () => load());
          },
        },
      });
    } catch (e) {
      app.toastError(e, 'Could not accept the batch');
    }
  }

  return {
    show(query) {
      const m = /(?:^|&)photo=(\d+)/.exec(query || '');
      const focus = m ? Number(m[1]) : null;
      if (!loaded || focus !== null) load({ focus });
      else if (map) refreshSize(map);
      paintBatch();
    },
    hide() {},
    refresh(what) {
      if (what.has('proposals') || what.has('locations') || what.has('photos')) load();
    },
    onKey(e) {
      if (e.ctrlKey || e.metaKey) {
        if (e.key.toLowerCase() === 'z') {
          undo();
          return true;
        }
        return false;
      }
      if (e.altKey) return false;
      const k = e.key;
      if (k === 'u' || k === 'U') {
        undo();
        return true;
      }
      if (!current()) return false;
      if (k === 'a' || k === 'A' || k === 'Enter') {
        if (k === 'Enter' && e.target instanceof HTMLButtonElement) return false; // let the button run
        accept();
        return true;
      }
      if (k === 'r' || k === 'R') {
        reject();
        return true;
      }
      if (k === 's' || k === 'S' || k === 'ArrowRight') {
        skip(1);
        return true;
      }
      if (k === 'ArrowLeft') {
        skip(-1);
        return true;
      }
      if ((k === 'h' || k === 'H') && heatModel()) {
        toggleHeat();
        return true;
      }
      return false;
    },
  };
}
