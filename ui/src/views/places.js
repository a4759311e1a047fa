// Places: country → region → city tree with counts; a level's photos in the virtual grid + a map.
import * as api from '../api.js';
import { h, icon, setChildren, emptyState, spinner, debounce } from '../ui/dom.js';
import { VirtualGrid } from '../ui/grid.js';
import { createMap, refreshSize, contextZoom } from '../ui/maps.js';
import { serializeFilter } from '../lib/state.js';
import { formatCount, plural } from '../lib/format.js';
import { boundsOf, zoomForPlaceLevel, lonNear } from '../lib/geo.js';

export default function createPlaces(app, root) {
  const L = window.L;
  let data = [];
  let loaded = false;
  let sel = null; // { level, cc, region, city, name, count, lat, lon, country }
  const open = new Set(); // expanded keys: "cc" or "cc|region"
  let query = '';
  let map = null;
  let dots = null;

  const search = h('input', { id: 'places-search', class: 'input input-small', type: 'search', placeholder: 'Filter places…', spellcheck: 'false', 'aria-label': 'Filter places' });
  search.addEventListener('input', debounce(() => {
    query = search.value.trim().toLowerCase();
    renderTree();
  }, 120));
  const countEl = h('span', { class: 'toolbar-count' });
  root.append(h('header', { class: 'view-header' }, h('h1', { class: 'view-title' }, 'Places'), countEl, h('span', { class: 'spacer' }), search));

  const tree = h('div', { class: 'place-tree', id: 'places-tree', role: 'tree', 'aria-label': 'Places' });
  const attribution = h('div', { class: 'places-attribution muted small' }, 'Place names: GeoNames (CC BY 4.0)');
  const titleEl = h('h2', { class: 'detail-title', id: 'places-title' });
  const subEl = h('div', { class: 'muted small' });
  const openBtn = h('button', { class: 'btn btn-small', onclick: () => sel && app.navigate('library', serializeFilter({ kind: 'all', place: placeOf(sel) })) }, 'Open in Library');
  const mapEl = h('div', { id: 'places-map', class: 'places-map' });
  const gridHost = h('div', { class: 'grid-host' });
  const right = h('div', { class: 'places-right' }, h('div', { class: 'places-head' }, h('div', {}, titleEl, subEl), h('span', { class: 'spacer' }), openBtn), mapEl, gridHost);
  const body = h('div', { class: 'places-body' });
  root.append(body);

  const grid = new VirtualGrid(gridHost, {
    minCell: 132,
    fetchPage: () => Promise.resolve({ total: 0, photos: [] }),
    onSelectionChange: (ids) => app.setSelection(ids),
    onError: (e) => app.toastError(e),
    emptyState: () => emptyState({ icon: 'image', title: 'No photos here', className: 'empty-compact' }),
  });

  function placeOf(s) {
    return { cc: s.cc, region: s.level === 'country' ? null : s.region, city: s.level === 'city' ? s.city : null };
  }

  async function load() {
    if (!loaded) setChildren(body, spinner('Loading places…'));
    try {
      const list = await api.places();
      data = (Array.isArray(list) ? list : []).slice().sort((a, b) => (b.count || 0) - (a.count || 0));
      loaded = true;
      render();
    } catch (e) {
      setChildren(body, emptyState({ icon: 'suspicious', title: 'Could not load places', body: e.message, actions: [h('button', { class: 'btn', onclick: () => load() }, 'Try again')] }));
    }
  }

  function render() {
    countEl.textContent = data.length ? plural(data.length, 'country', 'countries') : '';
    if (!data.length) {
      setChildren(
        body,
        emptyState({
          icon: 'places',
          title: 'No places yet',
          body: 'Places are named from the locations of your photos. Add a folder with geotagged photos, or accept proposals in Review, and they will be grouped here by country, region and city.',
          actions: [h('button', { class: 'btn', onclick: () => app.navigate('library') }, 'Go to Library')],
        }),
      );
      return;
    }
    if (!tree.isConnected) setChildren(body, h('div', { class: 'places-left' }, tree, attribution), right);
    if (!sel) {
      const c = data[0];
      selectLevel({ level: 'country', cc: c.cc, region: null, city: null, name: c.country, country: c.country, count: c.count, lat: c.lat, lon: c.lon });
    } else {
      renderTree();
      grid.refresh();
    }
  }

  const matches = (name) => !query || String(name || '').toLowerCase().includes(query);

  function row(level, label, count, depth, key, s, hasChildren) {
    const isOpen = open.has(key);
    const isSel = sel && sel.level === level && sel.cc === s.cc && (level === 'country' || sel.region === s.region) && (level !== 'city' || sel.city === s.city);
    const toggle = hasChildren
      ? h('button', { class: ['tree-toggle', isOpen && 'is-open'], 'aria-label': isOpen ? 'Collapse' : 'Expand', onclick: (e) => { e.stopPropagation(); if (isOpen) open.delete(key); else open.add(key); renderTree(); } }, icon('chevron', 14))
      : h('span', { class: 'tree-toggle-space' });
    return h(
      'div',
      {
        class: ['tree-row', `tree-${level}`, isSel && 'is-selected'],
        role: 'treeitem',
        'aria-level': String(depth + 1),
        'aria-selected': isSel ? 'true' : 'false',
        'aria-expanded': hasChildren ? String(isOpen) : null,
        dataset: { level, cc: s.cc },
        style: { paddingLeft: `${8 + depth * 16}px` },
        onclick: () => {
          if (hasChildren) open.add(key);
          selectLevel(s);
        },
      },
      toggle,
      h('span', { class: 'tree-label', title: label }, label),
      h('span', { class: 'tree-count' }, formatCount(count)),
    );
  }

  function renderTree() {
    const rows = [];
    for (const c of data) {
      const regions = Array.isArray(c.regions) ? c.regions : [];
      const regionHits = regions.filter((r) => matches(r.name) || (r.cities || []).some((ci) => matches(ci.name)));
      if (!matches(c.country) && !regionHits.length) continue;
      const cs = { level: 'country', cc: c.cc, region: null, city: null, name: c.country, country: c.country, count: c.count, lat: c.lat, lon: c.lon };
      rows.push(row('country', c.country || c.cc, c.count, 0, c.cc, cs, regions.length > 0));
      if (!(open.has(c.cc) || (query && regionHits.length))) continue;
      for (const r of matches(c.country) && !query ? regions : regionHits) {
        const key = `${c.cc}|${r.name}`;
        const rs = { level: 'region', cc: c.cc, region: r.name, city: null, name: r.name, country: c.country, count: r.count, lat: r.lat, lon: r.lon };
        const cities = Array.isArray(r.cities) ? r.cities : [];
        rows.push(row('region', r.name || 'Unknown region', r.count, 1, key, rs, cities.length > 0));
        const cityHits = query && !matches(r.name) ? cities.filter((ci) => matches(ci.name)) : cities;
        if (!(open.has(key) || (query && cityHits.length && !matches(r.name)))) continue;
        for (const ci of cityHits) {
          const s = { level: 'city', cc: c.cc, region: r.name, city: ci.name, name: ci.name, country: c.country, count: ci.count, lat: ci.lat, lon: ci.lon };
          rows.push(row('city', ci.name || 'Unknown place', ci.count, 2, `${key}|${ci.name}`, s, false));
        }
      }
    }
    setChildren(tree, rows.length ? rows : h('div', { class: 'muted tree-empty' }, 'No place matches'));
  }

  function selectLevel(s) {
    sel = s;
    renderTree();
    titleEl.textContent = s.name || s.cc;
    const crumbs = s.level === 'country' ? [] : s.level === 'region' ? [s.country] : [s.region, s.country];
    subEl.textContent = [plural(s.count || 0, 'photo'), crumbs.filter(Boolean).join(', ')].filter(Boolean).join(' · ');
    const place = placeOf(s);
    let first = true;
    grid.setSource(async (offset, limit) => {
      const res = await api.listPhotos({ kind: 'all', source: null, place, ids: null }, offset, limit);
      if (first && offset === 0 && sel === s) {
        first = false;
        plot(res.photos || [], s);
      }
      return res;
    });
    centerMap(s);
  }

  function ensureMap() {
    if (map || !L) return map;
    try {
      map = createMap(mapEl, { labels: true, zoom: 2 });
      dots = L.layerGroup().addTo(map);
    } catch (e) {
      console.error(e);
    }
    return map;
  }

  function centerMap(s) {
    if (!ensureMap()) return;
    dots.clearLayers();
    if (Number.isFinite(s.lat) && Number.isFinite(s.lon)) map.setView([s.lat, s.lon], contextZoom(zoomForPlaceLevel(s.level)), { animate: false });
  }

  function plot(photos, s) {
    if (!ensureMap()) return;
    dots.clearLayers();
    const pts = photos.filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
    const ref = Number.isFinite(s.lon) ? s.lon : pts[0]?.lon ?? 0;
    for (const p of pts) {
      L.circleMarker([p.lat, lonNear(p.lon, ref)], { radius: 4, color: '#0f1216', weight: 1, fillColor: '#5fb3ff', fillOpacity: 0.9, interactive: false }).addTo(dots);
    }
    const b = boundsOf(pts.map((p) => ({ lat: p.lat, lon: lonNear(p.lon, ref) })));
    if (b && pts.length > 1) map.fitBounds(b, { padding: [24, 24], maxZoom: contextZoom(s.level === 'city' ? 14 : 10), animate: false });
  }

  return {
    show() {
      if (!loaded) load();
      else {
        grid.schedule(true);
        if (map) refreshSize(map);
      }
    },
    hide() {},
    refresh(what) {
      if (what.has('locations') || what.has('photos') || what.has('roots')) load();
    },
    onKey() {
      return false;
    },
  };
}
