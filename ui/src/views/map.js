// Map: every located photo, clustered (leaflet.markercluster, chunked loading), a side panel with
// the photos of a clicked cluster/marker, and a drop target to place photos by hand.
import * as api from '../api.js';
import { h, icon, img, setChildren, emptyState, spinner } from '../ui/dom.js';
import { VirtualGrid, setDragData, getDragIds, isPhotoDrag } from '../ui/grid.js';
import { createMap, pinIcon, refreshSize } from '../ui/maps.js';
import { formatCount, plural, formatCoord } from '../lib/format.js';
import { normalizeLon, lonInterval } from '../lib/geo.js';
import { clusterIconHtml } from '../lib/html.js';

const PANEL_MAX = 2000;
const SOURCE_CLASS = { exif: 'exif', xmp: 'xmp', sidecar: 'xmp', user: 'user', proposal: 'proposal' };

export default function createMapView(app, root) {
  const L = window.L;
  let map = null;
  let cluster = null;
  let icons = {};
  let markers = new Map(); // photo id → marker
  let loaded = false;
  let loading = null;
  let stale = false;
  let fitted = false;
  let dropPin = null;
  let panelIds = [];
  let stripOpen = true;

  const mapEl = h('div', { id: 'map', class: 'map-canvas', 'aria-label': 'Map of located photos' });
  const status = h('div', { class: 'map-status', id: 'map-status' });
  const legend = h(
    'div',
    { class: 'map-legend' },
    [['exif', 'Camera GPS'], ['xmp', 'XMP'], ['user', 'By hand'], ['proposal', 'Accepted proposal']].map(([k, t]) => h('span', { class: 'legend-item' }, h('span', { class: `legend-dot src-${k}` }), t)),
  );
  const dropHint = h('div', { class: 'map-drop-hint', hidden: true }, icon('pin', 18), 'Drop to place the photos here');
  const panelGridHost = h('div', { class: 'grid-host' });
  const panelTitle = h('h2', { class: 'panel-title' });
  const panelNote = h('p', { class: 'panel-note muted' });
  const panel = h(
    'aside',
    { id: 'map-panel', class: 'map-panel', hidden: true, 'aria-label': 'Photos here' },
    h('header', { class: 'panel-header' }, panelTitle, h('button', { class: 'btn btn-ghost btn-icon', title: 'Close (Esc)', 'aria-label': 'Close', onclick: () => closePanel() }, icon('x', 16))),
    panelNote,
    panelGridHost,
  );
  const stripThumbs = h('div', { class: 'strip-thumbs' });
  const stripLabel = h('span', { class: 'strip-label' });
  const stripToggle = h('button', { class: 'btn btn-ghost btn-small', onclick: () => { stripOpen = !stripOpen; renderStrip(); } });
  const strip = h('div', { id: 'map-strip', class: 'map-strip', hidden: true }, h('div', { class: 'strip-head' }, icon('pin', 14), stripLabel, h('span', { class: 'spacer' }), stripToggle), stripThumbs);

  root.append(h('div', { class: 'map-wrap' }, mapEl, status, legend, dropHint, strip), panel);

  const panelGrid = new VirtualGrid(panelGridHost, {
    minCell: 96,
    pageSize: 120,
    fetchPage: (offset, limit) => (panelIds.length ? api.listPhotos({ kind: 'all', source: null, place: null, ids: panelIds }, offset, limit) : Promise.resolve({ total: 0, photos: [] })),
    onError: (e) => app.toastError(e),
    emptyState: () => emptyState({ icon: 'image', title: 'No photos here', className: 'empty-compact' }),
  });

  function setStatus(node) {
    if (node) {
      setChildren(status, node);
      status.hidden = false;
    } else status.hidden = true;
  }

  function ensureMap() {
    if (map) return map;
    if (!L || !L.markerClusterGroup) {
      setChildren(mapEl, emptyState({ icon: 'map', title: 'The map could not start', body: 'Leaflet failed to load.' }));
      return null;
    }
    map = createMap(mapEl, { center: [25, 10], zoom: 2 });
    // The map object on its element, for the UI benchmark's pan/zoom measurements.
    mapEl.leafletMap = map;
    map.ready.catch((e) => app.toastError(e, 'Base map unavailable'));
    icons = {};
    for (const k of ['exif', 'xmp', 'user', 'proposal', 'other']) {
      icons[k] = L.divIcon({ className: `photo-marker src-${k}`, iconSize: [12, 12], iconAnchor: [6, 6] });
    }
    cluster = L.markerClusterGroup({
      chunkedLoading: true,
      chunkInterval: 120,
      chunkDelay: 20,
      showCoverageOnHover: false,
      spiderfyOnMaxZoom: false,
      zoomToBoundsOnClick: false,
      removeOutsideVisibleBounds: true,
      maxClusterRadius: 56,
      iconCreateFunction: (c) => {
        const n = c.getChildCount();
        const size = n < 10 ? 'small' : n < 100 ? 'medium' : n < 1000 ? 'large' : 'xlarge';
        const d = { small: 30, medium: 36, large: 42, xlarge: 50 }[size];
        const label = n >= 10000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
        return L.divIcon({ html: clusterIconHtml(label), className: `marker-cluster pp-cluster pp-cluster-${size}`, iconSize: L.point(d, d) });
      },
    });
    cluster.on('clusterclick', (e) => {
      const ms = e.layer.getAllChildMarkers();
      openPanel(ms.map((m) => m.options.photoId), e.layer.getLatLng());
      if (map.getZoom() < map.getMaxZoom() - 1) e.layer.zoomToBounds({ padding: [60, 60], maxZoom: 16 });
    });
    cluster.on('click', (e) => {
      const m = e.layer;
      if (m && m.options.photoId !== undefined) openPanel([m.options.photoId], m.getLatLng());
    });
    map.addLayer(cluster);

    // Drop target: photos dragged from a grid (library selection strip, this panel).
    let depth = 0;
    mapEl.addEventListener('dragenter', (e) => {
      if (!isPhotoDrag(e)) return;
      depth++;
      dropHint.hidden = false;
      mapEl.classList.add('is-drop-target');
    });
    mapEl.addEventListener('dragover', (e) => {
      if (!isPhotoDrag(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    });
    mapEl.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (!depth) {
        dropHint.hidden = true;
        mapEl.classList.remove('is-drop-target');
      }
    });
    mapEl.addEventListener('drop', (e) => {
      depth = 0;
      dropHint.hidden = true;
      mapEl.classList.remove('is-drop-target');
      const ids = getDragIds(e);
      if (!ids || !ids.length) return;
      e.preventDefault();
      e.stopPropagation();
      const ll = map.mouseEventToLatLng(e);
      placeAt(ids, ll.lat, normalizeLon(ll.lng));
    });
    return map;
  }

  async function placeAt(ids, lat, lon) {
    const L2 = window.L;
    if (dropPin) dropPin.remove();
    dropPin = L2.marker([lat, lon], { icon: pinIcon('drop'), interactive: false, keyboard: false }).addTo(map);
    try {
      await app.edit(() => api.setLocation(ids, lat, lon), `Placed ${plural(ids.length, 'photo')} at ${formatCoord(lat, lon, 4)}`, {
        onUndone: () => loadPoints(true),
      });
      loadPoints(true);
    } catch (e) {
      app.toastError(e, 'Could not set the location');
    } finally {
      setTimeout(() => {
        if (dropPin) dropPin.remove();
        dropPin = null;
      }, 1500);
    }
  }

  function markerFor(id, lat, lon, source) {
    const m = L.marker([lat, lon], { icon: icons[SOURCE_CLASS[source]] || icons.other, keyboard: false, photoId: id, source, title: '' });
    return m;
  }

  /** Loads mapPoints() and updates the markers in place (only changed points are touched). */
  function loadPoints(force = false) {
    if (!ensureMap()) return Promise.resolve();
    if (loading) {
      if (force) stale = true;
      return loading;
    }
    if (loaded && !force && !stale) return Promise.resolve();
    stale = false;
    if (!loaded) setStatus(spinner('Loading photo locations…'));
    loading = api
      .mapPoints()
      .then((pts) => {
        const ids = pts?.ids || [];
        const lats = pts?.lats || [];
        const lons = pts?.lons || [];
        const sources = pts?.sources || [];
        const n = Math.min(ids.length, lats.length, lons.length);
        const next = new Map();
        const add = [];
        for (let i = 0; i < n; i++) {
          const id = ids[i];
          const lat = lats[i];
          const lon = lons[i];
          if (!Number.isFinite(lat) || !Number.isFinite(lon)) continue;
          const src = sources[i] || null;
          const old = markers.get(id);
          if (old) {
            const ll = old.getLatLng();
            if (ll.lat === lat && ll.lng === lon && old.options.source === src) {
              next.set(id, old);
              markers.delete(id);
              continue;
            }
          }
          const m = markerFor(id, lat, lon, src);
          next.set(id, m);
          add.push(m);
        }
        const remove = [...markers.values()];
        markers = next;
        if (remove.length) cluster.removeLayers(remove);
        if (add.length) cluster.addLayers(add);
        loaded = true;
        renderLegendCount(n);
        if (!n) {
          setStatus(
            h(
              'div',
              { class: 'map-empty' },
              h('strong', {}, 'No located photos yet'),
              h('span', {}, 'Photos with GPS tags appear here after a scan. Drag photos from the Library onto the map to place them by hand.'),
            ),
          );
        } else setStatus(null);
        if (!fitted && n) {
          fitted = true;
          let s = 90, nn = -90;
          for (let i = 0; i < n; i++) {
            if (lats[i] < s) s = lats[i];
            if (lats[i] > nn) nn = lats[i];
          }
          const step = Math.max(1, Math.floor(n / 20000));
          const sample = [];
          for (let i = 0; i < n; i += step) sample.push(lons[i]);
          // The narrowest span (it may cross 180°), unless that runs past the drawn base map.
          let [w, e] = lonInterval(sample);
          if (e > 205 || w < -205) {
            w = 180;
            e = -180;
            for (const x of sample) {
              if (x < w) w = x;
              if (x > e) e = x;
            }
          }
          map.fitBounds([[s, w], [nn, e]], { padding: [40, 40], maxZoom: 12, animate: false });
        }
      })
      .catch((e) => {
        setStatus(h('div', { class: 'map-empty' }, h('strong', {}, 'Could not load the photo locations'), h('span', {}, e.message)));
        app.toastError(e, 'Map');
      })
      .finally(() => {
        loading = null;
        if (stale) loadPoints(true);
      });
    return loading;
  }

  function renderLegendCount(n) {
    let c = legend.querySelector('.legend-count');
    if (!c) {
      c = h('span', { class: 'legend-count' });
      legend.prepend(c);
    }
    c.textContent = `${plural(n, 'photo')} on the map`;
  }

  function openPanel(ids, latlng) {
    const all = ids.filter((x) => x !== undefined && x !== null);
    panelIds = all.slice(0, PANEL_MAX);
    panel.hidden = false;
    panelTitle.textContent = all.length === 1 ? '1 photo here' : `${formatCount(all.length)} photos here`;
    panelNote.textContent =
      (latlng ? formatCoord(latlng.lat, latlng.lng, 3) : '') +
      (all.length > PANEL_MAX ? ` · showing the first ${formatCount(PANEL_MAX)}; zoom in to see the rest` : '');
    panelGrid.setSource(panelGrid.o.fetchPage);
    refreshSize(map);
  }

  function closePanel() {
    panel.hidden = true;
    panelIds = [];
    refreshSize(map);
  }

  function renderStrip() {
    const sel = app.store.get().selection || [];
    strip.hidden = !sel.length;
    if (!sel.length) return;
    stripLabel.textContent = `${plural(sel.length, 'selected photo')} — drag onto the map to place ${sel.length === 1 ? 'it' : 'them'} there`;
    stripToggle.textContent = stripOpen ? 'Hide' : 'Show';
    strip.classList.toggle('is-collapsed', !stripOpen);
    if (!stripOpen) return setChildren(stripThumbs);
    const shown = sel.slice(0, 40);
    setChildren(
      stripThumbs,
      shown.map((id) => {
        const t = h('div', { class: 'strip-thumb', draggable: 'true', dataset: { id }, title: 'Drag onto the map' }, img(api.thumbUrl(id), { className: 'thumb' }));
        t.addEventListener('dragstart', (e) => setDragData(e, app.store.get().selection || []));
        return t;
      }),
      sel.length > shown.length ? h('div', { class: 'strip-more' }, `+${formatCount(sel.length - shown.length)}`) : null,
    );
  }

  app.store.subscribe((s, changed) => {
    if (changed.includes('selection')) renderStrip();
  });
  renderStrip();

  return {
    show() {
      if (!ensureMap()) return;
      refreshSize(map);
      renderStrip();
      loadPoints(stale);
    },
    hide() {},
    refresh(what) {
      if (what.has('locations') || what.has('photos') || what.has('roots')) {
        stale = true;
        if (map) loadPoints(true);
      }
      if (!panel.hidden) panelGrid.refresh();
    },
    onKey(e) {
      if (e.key === 'Escape' && !panel.hidden) {
        closePanel();
        return true;
      }
      return false;
    },
  };
}
