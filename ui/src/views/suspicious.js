// Suspicious tags: GPS tags that disagree with where the photo looks like it was taken.
import * as api from '../api.js';
import { h, icon, img, setChildren, emptyState, spinner } from '../ui/dom.js';
import { confirmDialog } from '../ui/toast.js';
import { createMap, pinIcon, refreshSize, contextZoom } from '../ui/maps.js';
import { evidenceStrip, evidenceMarkers, highlightMarker } from './evidence.js';
import { formatCoord, formatDistance, formatPercent, plural, shortenPath } from '../lib/format.js';
import { haversineM, lonNear } from '../lib/geo.js';

export default function createSuspicious(app, root) {
  const L = window.L;
  let items = [];
  let selectedId = null;
  let loaded = false;
  let map = null;
  let layer = null;
  let evMarkers = [];
  let busy = false;

  const countEl = h('span', { class: 'toolbar-count', id: 'suspicious-count' });
  root.append(h('header', { class: 'view-header' }, h('h1', { class: 'view-title' }, 'Suspicious tags'), countEl));
  const listEl = h('div', { class: 'susp-list', role: 'listbox', 'aria-label': 'Suspicious tags', tabindex: '0' });
  const detail = h('div', { class: 'susp-detail' });
  const body = h('div', { class: 'susp-body' });
  root.append(body);

  // Detail skeleton, reused.
  const photoBox = h('div', { class: 'susp-photo' });
  const mapEl = h('div', { id: 'suspicious-map', class: 'susp-map' });
  const facts = h('div', { class: 'susp-facts' });
  const evBox = h('div', { class: 'susp-evidence' });
  const keepBtn = h('button', { id: 'suspicious-keep', class: 'btn', onclick: () => keep(), title: 'The tag is right (K)' }, icon('check', 16), 'Keep tag', h('kbd', {}, 'K'));
  const replaceBtn = h('button', { id: 'suspicious-replace', class: 'btn btn-primary', onclick: () => replace(), title: 'Use the proposed location (P)' }, icon('pin', 16), 'Replace with proposal', h('kbd', {}, 'P'));
  const clearBtn = h('button', { id: 'suspicious-clear', class: 'btn btn-danger-ghost', onclick: () => clearTag(), title: 'Remove the location (C)' }, icon('x', 16), 'Clear', h('kbd', {}, 'C'));
  const titleEl = h('h2', { class: 'detail-title' });
  const pathEl = h('div', { class: 'muted small' });
  detail.append(
    h('div', { class: 'susp-head' }, h('div', { class: 'susp-head-text' }, titleEl, pathEl), h('div', { class: 'susp-actions' }, keepBtn, replaceBtn, clearBtn)),
    h('div', { class: 'susp-top' }, photoBox, h('div', { class: 'susp-map-col' }, mapEl, facts)),
    evBox,
  );

  function current() {
    return items.find((s) => s.photoId === selectedId) || null;
  }

  async function load() {
    if (!loaded) setChildren(body, spinner('Loading suspicious tags…'));
    try {
      const list = await api.suspiciousList();
      items = Array.isArray(list) ? list : [];
      loaded = true;
      if (!items.some((s) => s.photoId === selectedId)) selectedId = items[0]?.photoId ?? null;
      render();
    } catch (e) {
      setChildren(body, emptyState({ icon: 'suspicious', title: 'Could not load suspicious tags', body: e.message, actions: [h('button', { class: 'btn', onclick: () => load() }, 'Try again')] }));
    }
  }

  function render() {
    countEl.textContent = items.length ? plural(items.length, 'photo') : '';
    if (!items.length) {
      setChildren(
        body,
        emptyState({
          icon: 'check',
          title: 'No suspicious tags',
          body: 'When a photo’s GPS tag disagrees strongly with where it looks like it was taken, it is listed here so you can keep, replace or clear it. Run Update in Jobs to check new photos.',
          actions: [h('button', { class: 'btn', onclick: () => app.navigate('jobs') }, 'Open Jobs')],
        }),
      );
      return;
    }
    if (!listEl.isConnected) setChildren(body, listEl, detail);
    renderList();
    renderDetail();
  }

  function renderList() {
    setChildren(
      listEl,
      items.map((s) =>
        h(
          'div',
          {
            class: ['susp-item', s.photoId === selectedId && 'is-selected'],
            role: 'option',
            'aria-selected': s.photoId === selectedId ? 'true' : 'false',
            dataset: { id: s.photoId },
            onclick: () => select(s.photoId),
          },
          img(api.thumbUrl(s.photoId), { className: 'susp-thumb' }),
          h(
            'div',
            { class: 'susp-item-text' },
            h('div', { class: 'susp-name', title: s.name }, s.name),
            h('div', { class: 'muted small' }, `${formatDistance(distanceOf(s))} off · ${formatPercent(s.confidence)}`),
          ),
        ),
      ),
    );
  }

  function distanceOf(s) {
    return Number.isFinite(s.distanceM) ? s.distanceM : haversineM(s.tagLat, s.tagLon, s.lat, s.lon);
  }

  function select(id) {
    selectedId = id;
    for (const el of listEl.children) {
      const on = Number(el.dataset.id) === id;
      el.classList.toggle('is-selected', on);
      el.setAttribute('aria-selected', on ? 'true' : 'false');
      if (on) el.scrollIntoView({ block: 'nearest' });
    }
    renderDetail();
  }

  function renderDetail() {
    const s = current();
    if (!s) return;
    titleEl.textContent = s.name;
    titleEl.title = s.name;
    pathEl.textContent = shortenPath(s.path, 90);
    pathEl.title = s.path;
    setChildren(photoBox, img(api.previewUrl(s.photoId), { alt: s.name, lazy: false, className: 'review-img' }));
    const d = distanceOf(s);
    setChildren(
      facts,
      h('div', { class: 'fact' }, h('span', { class: 'legend-dot dot-tag' }), h('span', { class: 'fact-k' }, 'Current tag'), h('span', {}, formatCoord(s.tagLat, s.tagLon, 4))),
      h('div', { class: 'fact' }, h('span', { class: 'legend-dot dot-proposal' }), h('span', { class: 'fact-k' }, 'Looks like'), h('span', {}, `${formatCoord(s.lat, s.lon, 4)} · ${formatPercent(s.confidence)}`)),
      h('div', { class: 'fact fact-distance' }, h('span', { class: 'fact-k' }, 'Distance'), h('strong', { id: 'suspicious-distance' }, `${(d / 1000).toFixed(d < 10000 ? 1 : 0)} km`)),
    );
    setChildren(evBox, evidenceStrip(s.evidence, { onHover: (i) => highlightMarker(evMarkers, i) }));
    [keepBtn, replaceBtn, clearBtn].forEach((b) => (b.disabled = busy));
    drawMap(s, d);
  }

  function drawMap(s, d) {
    if (!L) return;
    if (!map) {
      try {
        map = createMap(mapEl, { labels: false, center: [s.tagLat, s.tagLon], zoom: 4 });
      } catch (e) {
        console.error(e);
        return;
      }
      layer = L.layerGroup().addTo(map);
    }
    layer.clearLayers();
    const tag = L.latLng(s.tagLat, s.tagLon);
    const prop = L.latLng(s.lat, lonNear(s.lon, s.tagLon));
    if (s.radiusM) L.circle(prop, { radius: s.radiusM, color: '#f0b429', weight: 1, fillOpacity: 0.1, interactive: false }).addTo(layer);
    const line = L.polyline([tag, prop], { color: '#e8eaed', weight: 1.5, dashArray: '6 6', opacity: 0.8, interactive: false }).addTo(layer);
    line.bindTooltip(h('span', {}, formatDistance(d)), { permanent: true, direction: 'center', className: 'distance-label' });
    evMarkers = evidenceMarkers(L, layer, (s.evidence || []).map((ev) => (Number.isFinite(ev.lon) ? { ...ev, lon: lonNear(ev.lon, s.tagLon) } : ev)));
    L.marker(tag, { icon: pinIcon('tag'), keyboard: false, title: 'Current GPS tag' }).addTo(layer);
    L.marker(prop, { icon: pinIcon('proposal'), keyboard: false, title: 'Where it looks like it was taken' }).addTo(layer);
    requestAnimationFrame(() => {
      map.invalidateSize({ pan: false });
      map.fitBounds(L.latLngBounds([tag, prop]), { padding: [48, 48], maxZoom: contextZoom(13), animate: false });
    });
  }

  function next() {
    const i = items.findIndex((s) => s.photoId === selectedId);
    items = items.filter((s) => s.photoId !== selectedId);
    selectedId = items.length ? items[Math.min(i, items.length - 1)].photoId : null;
    render();
  }

  async function act(fn) {
    const s = current();
    if (!s || busy) return;
    busy = true;
    [keepBtn, replaceBtn, clearBtn].forEach((b) => (b.disabled = true));
    try {
      await fn(s);
      next();
    } catch (e) {
      app.toastError(e);
    } finally {
      busy = false;
      [keepBtn, replaceBtn, clearBtn].forEach((b) => (b.disabled = false));
    }
  }

  const keep = () =>
    act((s) => app.edit(() => api.keepTag(s.photoId), `Kept the tag of ${s.name}`, { revert: () => api.reopenSuspicious(s.photoId), onUndone: () => load() }));
  const replace = () =>
    act((s) => app.edit(() => api.setLocation([s.photoId], s.lat, s.lon), `Replaced the location of ${s.name}`, { onUndone: () => load() }));
  const clearTag = async () => {
    const s = current();
    if (!s) return;
    const ok = await confirmDialog({ title: 'Clear this photo’s location?', body: 'It will have no GPS tag until you place it or accept a proposal. You can undo this.', confirmLabel: 'Clear location', danger: true });
    if (ok) await act((x) => app.edit(() => api.clearLocation([x.photoId]), `Cleared the location of ${x.name}`, { onUndone: () => load() }));
  };

  function move(step) {
    if (!items.length) return;
    const i = items.findIndex((s) => s.photoId === selectedId);
    const j = Math.max(0, Math.min(items.length - 1, i + step));
    select(items[j].photoId);
  }

  return {
    show(query) {
      const m = /(?:^|&)photo=(\d+)/.exec(query || '');
      if (m) selectedId = Number(m[1]);
      if (!loaded || m) load();
      else if (map) refreshSize(map);
    },
    hide() {},
    refresh(what) {
      if (what.has('locations') || what.has('proposals') || what.has('photos')) load();
    },
    onKey(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return false;
      const k = e.key.toLowerCase();
      const actions = {
        arrowdown: () => move(1),
        arrowup: () => move(-1),
        k: () => keep(),
        p: () => replace(),
        c: () => clearTag(),
      };
      if (!actions[k]) return false;
      actions[k]();
      return true;
    },
  };
}
