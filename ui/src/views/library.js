// Library: roots, filters, the virtualised grid and the detail pane of the selected photo.
import * as api from '../api.js';
import { h, icon, img, setChildren, emptyState, spinner, debounce } from '../ui/dom.js';
import { VirtualGrid } from '../ui/grid.js';
import { confirmDialog } from '../ui/toast.js';
import { createMap, pinIcon, contextZoom } from '../ui/maps.js';
import { parseFilter, serializeFilter, filterToApi, filtersEqual, normalizeFilter, SOURCES } from '../lib/state.js';
import {
  formatCount, plural, formatDate, formatBytes, formatPixels, formatCoord, formatSource,
  formatPercent, shortenPath, formatAgo,
  formatClipLength,
} from '../lib/format.js';

const KINDS = [
  ['all', 'All'],
  ['untagged', 'Untagged'],
  ['tagged', 'Located'],
  ['proposed', 'Proposed'],
  ['suspicious', 'Suspicious'],
  ['missing', 'Missing'],
];

export default function createLibrary(app, root) {
  let filter = normalizeFilter({});
  let total = null;
  let detailToken = 0;
  let focusedId = null;
  let miniMap = null;
  let miniLayer = null;

  // ---- Header: roots ----
  const rootsList = h('div', { class: 'roots-chips', id: 'library-roots' });
  const pathInput = h('input', {
    id: 'root-path',
    class: 'input',
    type: 'text',
    placeholder: 'Paste a folder path…',
    spellcheck: 'false',
    autocomplete: 'off',
    'aria-label': 'Folder path to add',
  });
  const addBtn = h('button', { id: 'root-add', class: 'btn', type: 'submit' }, 'Add');
  const pickBtn = h('button', { id: 'root-pick', class: 'btn btn-primary', type: 'button', onclick: () => pickFolder() }, icon('folder', 16), 'Add folder…');
  const rootForm = h('form', { class: 'root-form', onsubmit: (e) => { e.preventDefault(); addPath(pathInput.value); } }, pathInput, addBtn);

  // ---- Filters ----
  const seg = h('div', { class: 'seg', role: 'radiogroup', 'aria-label': 'Show' });
  for (const [kind, label] of KINDS) {
    seg.append(h('button', { class: 'seg-btn', id: `filter-${kind}`, type: 'button', role: 'radio', dataset: { kind }, onclick: () => setFilter({ ...filter, kind }) }, label));
  }
  const sourceSel = h(
    'select',
    { id: 'filter-source', class: 'select', 'aria-label': 'Location source', onchange: () => setFilter({ ...filter, source: sourceSel.value || null }) },
    h('option', { value: '' }, 'Any source'),
    SOURCES.map((s) => h('option', { value: s }, formatSource(s))),
  );
  const placeChip = h('span', { class: 'chip chip-place', hidden: true });
  const countEl = h('span', { class: 'toolbar-count', id: 'library-count' }, '');

  const header = h(
    'header',
    { class: 'view-header' },
    h('h1', { class: 'view-title' }, 'Library'),
    rootsList,
    h('div', { class: 'header-actions' }, rootForm, pickBtn),
  );
  const toolbar = h('div', { class: 'toolbar' }, seg, sourceSel, placeChip, h('span', { class: 'spacer' }), countEl);
  const gridHost = h('div', { class: 'grid-host' });
  const detail = h('aside', { class: 'detail-pane', id: 'library-detail', 'aria-label': 'Photo details' });
  root.append(h('div', { class: 'library-main' }, header, toolbar, gridHost), detail);

  const grid = new VirtualGrid(gridHost, {
    minCell: 136,
    fetchPage: (offset, limit) => api.listPhotos(filterToApi(filter), offset, limit),
    onTotal: (t) => {
      total = t;
      countEl.textContent = plural(t, 'photo');
    },
    onFocus: (p) => showDetail(p.id),
    onSelectionChange: (ids) => {
      if (!ids.length) focusedId = null;
      app.setSelection(ids);
      renderSelInfo(ids);
      if (ids.length !== 1) renderDetail();
      else if (ids[0] !== focusedId) showDetail(ids[0]);
    },
    onError: (e) => app.toastError(e),
    emptyState: gridEmpty,
  });

  function renderSelInfo(ids) {
    countEl.title = ids.length ? `${formatCount(ids.length)} selected` : '';
  }

  function gridEmpty() {
    const ov = app.store.get().overview;
    const roots = ov?.roots || [];
    if (!roots.length) {
      return emptyState({
        icon: 'folder',
        title: 'Add your photos',
        body: 'Pinpoint looks at the photos in the folders you add. Nothing is uploaded and files are only changed when you accept a location.',
        actions: [h('button', { class: 'btn btn-primary', onclick: () => pickFolder() }, icon('folder', 16), 'Add folder…'), h('span', { class: 'empty-hint' }, 'or paste a path in the field above')],
      });
    }
    const toJobs = h('button', { class: 'btn', onclick: () => app.navigate('jobs') }, 'Open Jobs');
    const showAll = h('button', { class: 'btn', onclick: () => setFilter({ kind: 'all' }) }, 'Show all photos');
    const byKind = {
      untagged: ['Every photo has a location', 'Nothing left to locate in this selection.'],
      tagged: ['No located photos yet', 'Photos with a GPS tag, or placed by you, show up here.'],
      proposed: ['No proposals waiting', 'Run Update in Jobs to look for places in your untagged photos.'],
      suspicious: ['No suspicious tags', 'GPS tags that disagree with what the photo shows are listed here after Update.'],
      missing: ['No missing files', 'Photos whose files were moved or deleted outside Pinpoint show up here.'],
    };
    if (filter.kind !== 'all' || filter.source || filter.place) {
      const [t, b] = byKind[filter.kind] || ['No photos match', 'Try another filter.'];
      return emptyState({ icon: 'image', title: t, body: b, actions: filter.kind === 'proposed' ? [toJobs, showAll] : [showAll] });
    }
    return emptyState({
      icon: 'image',
      title: 'No photos found yet',
      body: 'The folders are being scanned, or hold no photos Pinpoint can read. Progress shows in Jobs.',
      actions: [toJobs],
    });
  }

  // ---- Roots ----
  function renderRoots() {
    const roots = app.store.get().overview?.roots || [];
    setChildren(
      rootsList,
      roots.length
        ? roots.map((r) =>
            h(
              'span',
              { class: 'chip chip-root', title: `${r.path}\n${r.lastScanCompletedAt ? 'Last scanned ' + formatAgo(r.lastScanCompletedAt) : 'Not scanned yet'}` },
              icon('folder', 14),
              shortenPath(r.path, 34),
            ),
          )
        : h('span', { class: 'muted' }, 'No folders yet'),
    );
  }

  /** `picked`: the path came from the native folder dialog (no confirmation needed). */
  async function addPath(path, picked = false) {
    const p = String(path || '').trim();
    if (!p) {
      pathInput.focus();
      app.toast('Type or paste the path of a folder first', { kind: 'info' });
      return;
    }
    addBtn.disabled = true;
    try {
      if (!(await (picked ? api.addRoot(p) : api.addTypedRoot(p)))) {
        app.toast('Folder not added', { kind: 'info' });
        return;
      }
      pathInput.value = '';
      app.toast(`Added ${p} — scanning it now`, { kind: 'success' });
      await app.refreshOverview().catch(() => {});
      api.jobs().then((jobs) => Array.isArray(jobs) && app.store.set({ jobs })).catch(() => {});
    } catch (e) {
      app.toastError(e, 'Could not add the folder');
    } finally {
      addBtn.disabled = false;
    }
  }

  async function pickFolder() {
    try {
      const p = await api.pickFolder();
      if (p) await addPath(p, true);
    } catch (e) {
      app.toastError(e, 'Could not open the folder dialog');
    }
  }

  // ---- Filter ----
  function paintFilter() {
    for (const b of seg.children) {
      const on = b.dataset.kind === filter.kind;
      b.classList.toggle('is-active', on);
      b.setAttribute('aria-checked', on ? 'true' : 'false');
    }
    sourceSel.value = filter.source || '';
    if (filter.place) {
      placeChip.hidden = false;
      setChildren(
        placeChip,
        icon('places', 14),
        [filter.place.city, filter.place.region, filter.place.cc].filter(Boolean).join(', '),
        h('button', { class: 'chip-x', title: 'Remove place filter', 'aria-label': 'Remove place filter', onclick: () => setFilter({ ...filter, place: null }) }, icon('x', 12)),
      );
    } else placeChip.hidden = true;
  }

  function setFilter(f, { fromRoute = false } = {}) {
    const next = normalizeFilter(f);
    if (filtersEqual(next, filter) && total !== null) return;
    filter = next;
    paintFilter();
    countEl.textContent = '';
    total = null;
    if (!fromRoute) app.replaceQuery('library', serializeFilter(filter));
    grid.setSource((offset, limit) => api.listPhotos(filterToApi(filter), offset, limit));
    renderDetail();
  }

  // ---- Detail ----
  const loadDetail = debounce(async (id, token) => {
    try {
      const d = await api.photoDetail(id);
      if (token === detailToken) renderDetail(d);
    } catch (e) {
      if (token === detailToken) setChildren(detail, emptyState({ icon: 'suspicious', title: 'Could not load this photo', body: e.message, className: 'empty-compact' }));
    }
  }, 90);

  function showDetail(id) {
    focusedId = id;
    const token = ++detailToken;
    const ids = grid.getSelectedIds();
    if (ids.length > 1) return renderDetail();
    const p = grid.getPhotoById(id);
    if (p) renderDetailSkeleton(p);
    loadDetail(id, token);
  }

  function renderDetailSkeleton(p) {
    setChildren(detail, h('div', { class: 'detail-preview' }, previewOf(p)), h('div', { class: 'detail-body' }, h('h2', { class: 'detail-title' }, p.name), spinner('Loading details…')));
  }

  function renderDetail(d) {
    const ids = grid.getSelectedIds();
    if (!d && ids.length > 1) {
      detailToken++;
      const strip = h('div', { class: 'multi-thumbs' }, ids.slice(0, 12).map((id) => img(api.thumbUrl(id), { className: 'multi-thumb' })));
      setChildren(
        detail,
        h(
          'div',
          { class: 'detail-body' },
          h('h2', { class: 'detail-title' }, `${plural(ids.length, 'photo')} selected`),
          strip,
          h('p', { class: 'muted' }, 'Drag them onto the Map view to place them all at one spot, or:'),
          h(
            'div',
            { class: 'detail-actions' },
            h('button', { class: 'btn btn-primary', onclick: () => app.navigate('map') }, icon('pin', 16), 'Place on map…'),
            h('button', { class: 'btn', onclick: () => clearLocations(ids) }, 'Clear locations'),
            h('button', { class: 'btn btn-ghost', onclick: () => grid.clearSelection() }, 'Clear selection'),
          ),
        ),
      );
      return;
    }
    if (!d) {
      if (ids.length === 1 && focusedId === ids[0]) return;
      setChildren(
        detail,
        emptyState({
          icon: 'image',
          title: 'No photo selected',
          body: 'Click a photo to see its details. Shift-click or Ctrl-click selects several; drag a selection onto the Map to place it by hand.',
          className: 'empty-compact',
        }),
      );
      return;
    }
    const located = d.lat !== null && d.lat !== undefined;
    const prop = d.proposal;
    const rows = [
      ['Taken', formatDate(d.takenAt, { seconds: true })],
      ['Camera', [d.make, d.model].filter(Boolean).join(' ') || '—'],
      ['Size', formatBytes(d.size)],
      ['Pixels', formatPixels(d.width, d.height)],
      ['Format', d.format ? String(d.format).toUpperCase() : '—'],
      ['Location', located ? formatCoord(d.lat, d.lon) : 'None'],
      ['Source', formatSource(d.source)],
    ];
    if (d.alt !== null && d.alt !== undefined) rows.push(['Altitude', `${Math.round(d.alt)} m`]);
    if (d.place) rows.push(['Place', [d.place.city, d.place.region, d.place.country].filter(Boolean).join(', ')]);
    if (prop) rows.push(['Proposal', `${formatCoord(prop.lat, prop.lon, 4)} · ${formatPercent(prop.confidence)} · ${prop.status}`]);
    if (d.video && d.durationS !== null && d.durationS !== undefined) rows.push(['Length', formatClipLength(d.durationS)]);
    if (d.sidecarPath) rows.push(['Sidecar', d.sidecarPath]);
    rows.push(['Path', d.path]);

    const chips = h('div', { class: 'chips' });
    if (d.status === 'missing') chips.append(h('span', { class: 'chip chip-muted' }, 'File missing'));
    if (located) chips.append(h('span', { class: 'chip chip-ok' }, icon('pin', 12), 'Located'));
    else chips.append(h('span', { class: 'chip' }, 'No location'));
    if (d.hasProposal) chips.append(h('span', { class: 'chip chip-accent' }, 'Proposed'));
    if (d.suspicious) chips.append(h('span', { class: 'chip chip-warn' }, icon('suspicious', 12), 'Suspicious'));
    if (d.embeddedGpsStale) {
      chips.append(h('span', {
        class: 'chip chip-warn',
        title: 'The location is in the sidecar; the file itself still carries its old GPS tag, which programs that read only EXIF will show.',
      }, icon('suspicious', 12), 'Old GPS still in file'));
    }

    const mapBox = h('div', { class: 'detail-map' });
    const actions = h('div', { class: 'detail-actions' });
    if (prop && prop.status === 'pending') actions.append(h('button', { class: 'btn btn-primary', onclick: () => app.navigate('review', `photo=${d.id}`) }, icon('review', 16), 'Review proposal'));
    if (d.suspicious) actions.append(h('button', { class: 'btn', onclick: () => app.navigate('suspicious', `photo=${d.id}`) }, 'Check tag'));
    actions.append(h('button', { class: 'btn', onclick: () => app.navigate('map'), title: 'Drag it from the selection strip onto the map' }, icon('pin', 16), located ? 'Move on map…' : 'Place on map…'));
    if (located) actions.append(h('button', { class: 'btn btn-ghost', onclick: () => clearLocations([d.id]) }, 'Clear location'));

    setChildren(
      detail,
      h('div', { class: 'detail-preview' }, previewOf(d)),
      h(
        'div',
        { class: 'detail-body' },
        h('h2', { class: 'detail-title', title: d.name }, d.name),
        chips,
        d.warnings && d.warnings.length ? h('ul', { class: 'warnings' }, d.warnings.map((w) => h('li', {}, icon('suspicious', 14), w))) : null,
        located || prop ? mapBox : null,
        h('dl', { class: 'meta' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', { title: String(v) }, v)])),
        actions,
      ),
    );
    if (located || prop) drawMini(mapBox, d);
  }

  /** The large picture of the detail pane; a video shows its poster frame, or its icon where
   * no frame can be made. */
  function previewOf(p) {
    if (p.video) {
      const poster = p.poster ? img(api.previewUrl(p.id), { alt: '', lazy: false, className: 'video-poster' }) : null;
      return h('div', { class: ['preview', 'video-tile', poster && 'has-poster'], role: 'img', 'aria-label': `Video ${p.name || ''}` }, icon('video', 64), poster);
    }
    return img(api.previewUrl(p.id), { alt: p.name, lazy: false, className: 'preview' });
  }

  function drawMini(box, d) {
    const L = window.L;
    if (!L) return;
    // One Leaflet map reused for every photo: move its element into the new box.
    if (!miniMap) {
      const el = h('div', { class: 'mini-map' });
      box.append(el);
      try {
        miniMap = createMap(el, { minimap: true });
      } catch (e) {
        console.error(e);
        return;
      }
      miniLayer = L.layerGroup().addTo(miniMap);
    } else {
      box.append(miniMap.getContainer());
      miniMap.invalidateSize({ pan: false });
    }
    miniLayer.clearLayers();
    const pts = [];
    if (d.lat !== null && d.lat !== undefined) {
      L.marker([d.lat, d.lon], { icon: pinIcon('photo'), keyboard: false, interactive: false }).addTo(miniLayer);
      pts.push([d.lat, d.lon]);
    }
    const prop = d.proposal;
    if (prop && Number.isFinite(prop.lat)) {
      if (prop.radiusM) L.circle([prop.lat, prop.lon], { radius: prop.radiusM, className: 'radius-circle', color: '#f0b429', weight: 1, fillOpacity: 0.12 }).addTo(miniLayer);
      L.marker([prop.lat, prop.lon], { icon: pinIcon('proposal'), keyboard: false, interactive: false }).addTo(miniLayer);
      pts.push([prop.lat, prop.lon]);
    }
    requestAnimationFrame(() => {
      miniMap.invalidateSize({ pan: false });
      if (pts.length === 1) miniMap.setView(pts[0], contextZoom(prop && !d.lat ? 9 : 11), { animate: false });
      else if (pts.length > 1) miniMap.fitBounds(pts, { padding: [24, 24], maxZoom: contextZoom(12), animate: false });
    });
  }

  async function clearLocations(ids) {
    const ok = await confirmDialog({
      title: ids.length === 1 ? 'Clear this photo’s location?' : `Clear the location of ${plural(ids.length, 'photo')}?`,
      body: 'The GPS tag is removed from the file (or its sidecar). You can undo this.',
      confirmLabel: 'Clear location',
      danger: true,
    });
    if (!ok) return;
    try {
      await app.edit(() => api.clearLocation(ids), `Cleared the location of ${plural(ids.length, 'photo')}`);
      grid.refresh();
      if (focusedId !== null) showDetail(focusedId);
    } catch (e) {
      app.toastError(e, 'Could not clear the location');
    }
  }

  const unsub = app.store.subscribe((s, changed) => {
    if (changed.includes('overview')) {
      renderRoots();
      if (total === 0) grid.schedule();
    }
  });
  renderRoots();
  renderDetail();

  return {
    show(query) {
      const f = parseFilter(query);
      if (!filtersEqual(f, filter) || total === null) setFilter(f, { fromRoute: true });
      else app.replaceQuery('library', serializeFilter(filter));
      grid.schedule(true);
      if (miniMap) miniMap.invalidateSize({ pan: false });
    },
    hide() {},
    refresh(what) {
      if (what.has('roots')) renderRoots();
      grid.refresh();
      if (focusedId !== null && grid.getSelectedIds().length <= 1) showDetail(focusedId);
    },
    onKey(e) {
      if (e.key === 'Escape' && grid.getSelectedIds().length) {
        grid.clearSelection();
        return true;
      }
      if (['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'].includes(e.key) && document.activeElement !== grid.el) {
        grid.el.focus();
        grid.onKey(e);
        return true;
      }
      return false;
    },
    destroy() {
      unsub();
      grid.destroy();
    },
  };
}
