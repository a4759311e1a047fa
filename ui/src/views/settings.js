// Settings: folders, engine info, write mode, reference databases, online tiles, edit history.
import * as api from '../api.js';
import { h, icon, img, setChildren, spinner } from '../ui/dom.js';
import { confirmDialog } from '../ui/toast.js';
import { setTiles } from '../ui/maps.js';
import { tileUrlProblem } from '../lib/tiles.js';
import { formatAgo, formatBytes, formatClockOffset, formatCount, formatUnix, plural, shortenPath } from '../lib/format.js';

const WRITE_MODES = [
  ['embed', 'In the photo', 'Write GPS into the file’s EXIF. Other apps see it everywhere.'],
  ['sidecar', 'Sidecar file', 'Write an .xmp file next to the photo; the photo itself is never modified.'],
  ['both', 'Both', 'Write the EXIF tag and a sidecar.'],
];

export default function createSettings(app, root) {
  let settings = null;
  let loadedOnce = false;

  const sec = (id, title, intro, ...body) =>
    h('section', { class: 'card settings-section', id }, h('h2', { class: 'card-title' }, title), intro ? h('p', { class: 'muted small card-intro' }, intro) : null, ...body);

  // Folders
  const rootsList = h('ul', { class: 'settings-list', id: 'settings-roots' });
  const rootInput = h('input', { id: 'settings-root-path', class: 'input', type: 'text', placeholder: '/path/to/photos', spellcheck: 'false', 'aria-label': 'Folder path' });
  const rootForm = h(
    'form',
    { class: 'inline-form', onsubmit: (e) => { e.preventDefault(); addRoot(rootInput.value); } },
    rootInput,
    h('button', { class: 'btn', type: 'submit', id: 'settings-root-add' }, 'Add'),
    h('button', { class: 'btn', type: 'button', onclick: () => pick() }, icon('folder', 16), 'Choose…'),
  );

  // Engine
  const engine = h('dl', { class: 'meta meta-wide', id: 'settings-engine' });

  // Write mode
  const modeBox = h('div', { class: 'radio-cards', role: 'radiogroup', 'aria-label': 'Write mode' });
  for (const [value, title, text] of WRITE_MODES) {
    const input = h('input', { type: 'radio', name: 'write-mode', value, id: `write-mode-${value}` });
    input.addEventListener('change', () => input.checked && saveWriteMode(value));
    modeBox.append(h('label', { class: 'radio-card', for: `write-mode-${value}` }, input, h('span', { class: 'radio-card-text' }, h('strong', {}, title), h('span', { class: 'muted small' }, text))));
  }

  // Reference databases
  const refList = h('div', { class: 'refdb-list', id: 'settings-refdbs' });

  // Tiles
  const tilesEnabled = h('input', { type: 'checkbox', id: 'tiles-enabled' });
  const tilesUrl = h('input', { id: 'tiles-url', class: 'input', type: 'text', placeholder: 'https://tile.example.org/{z}/{x}/{y}.png', spellcheck: 'false' });
  const tilesAttr = h('input', { id: 'tiles-attribution', class: 'input', type: 'text', placeholder: '© The map’s authors', spellcheck: 'false' });
  const tilesSave = h('button', { id: 'tiles-save', class: 'btn btn-primary', type: 'submit' }, 'Save map settings');
  const tilesForm = h(
    'form',
    { class: 'stack', onsubmit: (e) => { e.preventDefault(); saveTiles(); } },
    h('label', { class: 'check' }, tilesEnabled, h('span', {}, 'Use an online map (tile server)')),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'URL template'), tilesUrl),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Attribution'), tilesAttr),
    h('div', {}, tilesSave),
  );

  // Camera clocks
  const cameraList = h('div', { class: 'camera-list', id: 'settings-cameras' });
  const estimateBtn = h('button', { class: 'btn', type: 'button', id: 'cameras-estimate', onclick: () => estimateClocks() }, icon('clock', 16), 'Estimate from photos');

  // History
  const histList = h('div', { class: 'history-list', id: 'settings-history' });

  const body = h(
    'div',
    { class: 'settings-body' },
    sec('settings-folders', 'Library folders', 'Pinpoint scans these folders (and their subfolders) for photos.', rootsList, rootForm),
    sec('settings-writing', 'Writing locations', 'Where accepted and hand-placed locations are stored. Every change is journaled and can be undone.', modeBox),
    sec('settings-map', 'Map', 'Pinpoint’s own map is drawn offline from Natural Earth data. Nothing is fetched from the internet unless you enable an online map here (an https:// tile server); the tile server then sees which areas you look at. Tiles you have seen are kept on disk and show offline.', tilesForm),
    sec(
      'settings-cameras-section',
      'Camera clocks',
      'A camera without GPS is placed by time along the photos of a camera with GPS (your phone), once its clock offset is known. Pinpoint estimates the offset from photos of both that show the same scene; confirm it or type your own (−1h07m, +45s, −01:07:00).',
      cameraList,
      h('div', { class: 'inline-form' }, estimateBtn),
    ),
    sec('settings-references', 'Reference databases', 'Collections of located photos that proposals are compared with, beside your own located photos.', refList),
    sec('settings-engine-section', 'Engine', null, engine),
    sec('settings-history-section', 'Edit history', 'Every batch of location changes, newest first.', histList),
  );
  root.append(h('header', { class: 'view-header' }, h('h1', { class: 'view-title' }, 'Settings')), body);

  // ---- Renderers ----
  function renderOverview() {
    const ov = app.store.get().overview;
    if (!ov) {
      setChildren(rootsList, h('li', { class: 'muted' }, 'Loading…'));
      return;
    }
    const roots = ov.roots || [];
    setChildren(
      rootsList,
      roots.length
        ? roots.map((r) =>
            h(
              'li',
              { class: 'settings-row' },
              icon('folder', 16),
              h('div', { class: 'row-text' }, h('div', { class: 'row-title', title: r.path }, shortenPath(r.path, 70)), h('div', { class: 'muted small' }, r.lastScanCompletedAt ? `Scanned ${formatAgo(r.lastScanCompletedAt)}` : 'Not scanned yet')),
              h('button', { class: 'btn btn-small btn-danger-ghost root-remove', dataset: { path: r.path }, onclick: () => removeRoot(r.path) }, 'Remove'),
            ),
          )
        : h('li', { class: 'muted' }, 'No folders yet. Add one below.'),
    );
    setChildren(
      engine,
      h('dt', {}, 'Compute device'),
      h('dd', { id: 'settings-device' }, ov.device || '—'),
      h('dt', {}, 'Model'),
      h('dd', { id: 'settings-model', title: ov.model?.hash || '' }, ov.model ? `${ov.model.name}${ov.model.hash ? ` (${String(ov.model.hash).slice(0, 12)})` : ''}` : '—'),
      h('dt', {}, 'Catalog'),
      h('dd', { title: ov.catalogPath || '' }, ov.catalogPath || '—'),
      h('dt', {}, 'Photos'),
      h('dd', {}, formatCount(ov.counts?.total ?? 0)),
    );
    if (!settings) applySettings({ writeMode: ov.writeMode, tiles: ov.tiles });
  }

  function applySettings(s) {
    if (!s) return;
    settings = { writeMode: s.writeMode || 'embed', tiles: { enabled: Boolean(s.tiles?.enabled), url: s.tiles?.url || '', attribution: s.tiles?.attribution || '' } };
    for (const r of modeBox.querySelectorAll('input[type=radio]')) r.checked = r.value === settings.writeMode;
    tilesEnabled.checked = settings.tiles.enabled;
    tilesUrl.value = settings.tiles.url;
    tilesAttr.value = settings.tiles.attribution;
  }

  async function loadSettings() {
    try {
      applySettings(await api.settings());
    } catch (e) {
      app.toastError(e, 'Could not load settings');
    }
  }

  async function loadRefdbs() {
    setChildren(refList, spinner('Loading…'));
    try {
      const list = await api.refdbs();
      const dbs = Array.isArray(list) ? list : [];
      if (!dbs.length) {
        setChildren(refList, h('p', { class: 'muted' }, 'No reference databases are installed. Proposals then come from your own located photos only.'));
        return;
      }
      setChildren(
        refList,
        dbs.map((db) => {
          const toggle = h('input', { type: 'checkbox', class: 'switch', checked: Boolean(db.enabled), 'aria-label': `Use ${db.name}`, dataset: { name: db.name } });
          toggle.addEventListener('change', async () => {
            toggle.disabled = true;
            try {
              await api.setRefdbEnabled(db.name, toggle.checked);
              app.toast(`${db.name} ${toggle.checked ? 'enabled' : 'disabled'} — run Propose to update proposals`, { kind: 'success' });
            } catch (e) {
              toggle.checked = !toggle.checked;
              app.toastError(e, `Could not change ${db.name}`);
            } finally {
              toggle.disabled = false;
            }
          });
          return h(
            'div',
            { class: 'refdb' },
            h(
              'div',
              { class: 'row-text' },
              h('div', { class: 'row-title' }, db.name, db.version ? h('span', { class: 'muted small' }, ` v${db.version}`) : null),
              h('div', { class: 'muted small' }, [db.region, db.count !== undefined ? plural(db.count, 'photo') : null, formatBytes(db.bytes), db.licence].filter(Boolean).join(' · ')),
              db.attribution ? h('div', { class: 'muted small refdb-attr' }, db.attribution) : null,
            ),
            h('label', { class: 'switch-wrap' }, toggle, h('span', { class: 'switch-track' })),
          );
        }),
      );
    } catch (e) {
      setChildren(refList, h('p', { class: 'muted' }, `Could not load reference databases: ${e.message}`));
    }
  }

  async function loadCameras() {
    try {
      const list = await api.cameras();
      const cams = Array.isArray(list) ? list : [];
      if (!cams.length) {
        setChildren(cameraList, h('p', { class: 'muted' }, 'No photo records the camera it was taken with.'));
        return;
      }
      setChildren(cameraList, cams.map(cameraRow));
    } catch (e) {
      setChildren(cameraList, h('p', { class: 'muted' }, `Could not load cameras: ${e.message}`));
    }
  }

  function cameraRow(c) {
    const known = Number.isFinite(c.offsetS);
    const status = known
      ? `${formatClockOffset(c.offsetS)}${Number.isFinite(c.spreadS) ? ` ± ${Math.round(c.spreadS)} s` : ''} · ${c.source === 'set' ? 'set by you' : `estimated from ${plural(c.pairs.length, 'pair')}`}`
      : c.note || 'No clock offset';
    const input = h('input', { class: 'input input-small', type: 'text', placeholder: known ? formatClockOffset(c.offsetS) : '−1h07m', spellcheck: 'false', 'aria-label': `Clock offset of ${c.camera}` });
    const form = h(
      'form',
      { class: 'inline-form', onsubmit: (e) => { e.preventDefault(); setOffset(c.camera, input.value || (known ? String(c.offsetS) : '')); } },
      input,
      h('button', { class: 'btn btn-small', type: 'submit' }, known && c.source !== 'set' && !input.value ? 'Confirm' : 'Set'),
      c.source === 'set' ? h('button', { class: 'btn btn-small', type: 'button', onclick: () => setOffset(c.camera, null) }, 'Use the estimate') : null,
    );
    const pairs = (c.pairs || []).slice(0, 6).map((p) =>
      h(
        'div',
        { class: 'clock-pair', title: `${p.inliers} matching points` },
        p.photoId !== null ? img(api.thumbUrl(p.photoId), { className: 'clock-thumb', alt: p.photoName }) : null,
        p.referenceId !== null ? img(api.thumbUrl(p.referenceId), { className: 'clock-thumb', alt: p.referenceName }) : null,
        h('div', { class: 'muted small' }, `${p.photoName} ↔ ${p.referenceName}: ${formatClockOffset(p.seconds)}`),
      ),
    );
    return h(
      'div',
      { class: 'camera', dataset: { camera: c.camera } },
      h(
        'div',
        { class: 'row-text' },
        h('div', { class: 'row-title' }, c.camera),
        h('div', { class: 'muted small' }, `${plural(c.photos, 'photo')}, ${formatCount(c.tagged)} located · ${status}`),
      ),
      c.note && c.note.startsWith('records GPS') ? null : form,
      pairs.length ? h('div', { class: 'clock-pairs' }, pairs) : null,
    );
  }

  async function setOffset(camera, text) {
    try {
      await api.setCameraOffset(camera, text);
      app.toast(text === null ? `${camera}: the estimated offset applies` : `${camera}: clock offset set — run Propose to place its photos`, { kind: 'success' });
      loadCameras();
    } catch (e) {
      app.toastError(e, `Could not set the clock of ${camera}`);
    }
  }

  async function estimateClocks() {
    try {
      await api.startJob('cameras');
      app.toast('Estimating camera clocks — see Jobs', { kind: 'info' });
    } catch (e) {
      app.toastError(e, 'Could not start the estimate');
    }
  }

  async function loadHistory() {
    setChildren(histList, spinner('Loading…'));
    try {
      const list = await api.history(50);
      const batches = Array.isArray(list) ? list : [];
      if (!batches.length) {
        setChildren(histList, h('p', { class: 'muted' }, 'No changes yet. Accepted proposals and locations you set by hand are listed here.'));
        return;
      }
      setChildren(histList, batches.map(batchRow));
    } catch (e) {
      setChildren(histList, h('p', { class: 'muted' }, `Could not load the history: ${e.message}`));
    }
  }

  function batchRow(b) {
    const edits = Array.isArray(b.edits) ? b.edits : [];
    const failed = edits.filter((e) => e.error).length;
    const undone = b.undoneBy !== null && b.undoneBy !== undefined;
    const isUndo = b.undoOf !== null && b.undoOf !== undefined;
    const status = undone ? h('span', { class: 'chip chip-muted' }, 'Undone') : isUndo ? h('span', { class: 'chip' }, 'Undo') : null;
    const undoBtn = h('button', { class: 'btn btn-small batch-undo', dataset: { batch: b.id }, disabled: undone || null, onclick: () => undoBatch(b) }, icon('undo', 14), 'Undo');
    return h(
      'div',
      { class: ['batch', undone && 'is-undone'], dataset: { id: b.id } },
      h(
        'div',
        { class: 'batch-top' },
        h('div', { class: 'row-text' }, h('div', { class: 'row-title' }, b.description || `Batch ${b.id}`, ' ', status), h('div', { class: 'muted small' }, `${formatUnix(b.createdAt)} · ${plural(edits.length, 'file')}${failed ? ` · ${failed} failed` : ''}`)),
        undoBtn,
      ),
      edits.length
        ? h(
            'details',
            { class: 'batch-edits' },
            h('summary', {}, 'Files'),
            h('ul', {}, edits.slice(0, 200).map((e) => h('li', { class: e.error ? 'is-error' : '' }, h('code', { title: e.path }, shortenPath(e.path, 80)), h('span', { class: 'muted small' }, ` ${e.target || ''} · ${e.state || ''}${e.error ? ' · ' + e.error : ''}`))), edits.length > 200 ? h('li', { class: 'muted' }, `and ${edits.length - 200} more`) : null),
          )
        : null,
    );
  }

  // ---- Actions ----
  /** `picked`: the path came from the native folder dialog (no confirmation needed). */
  async function addRoot(path, picked = false) {
    const p = String(path || '').trim();
    if (!p) return app.toast('Type or paste a folder path first', { kind: 'info' });
    try {
      if (!(await (picked ? api.addRoot(p) : api.addTypedRoot(p)))) {
        app.toast('Folder not added', { kind: 'info' });
        return;
      }
      rootInput.value = '';
      app.toast(`Added ${p} — scanning it now`, { kind: 'success' });
      await app.refreshOverview();
    } catch (e) {
      app.toastError(e, 'Could not add the folder');
    }
  }

  async function pick() {
    try {
      const p = await api.pickFolder();
      if (p) await addRoot(p, true);
    } catch (e) {
      app.toastError(e, 'Could not open the folder dialog');
    }
  }

  async function removeRoot(path) {
    const ok = await confirmDialog({
      title: 'Remove this folder from the library?',
      body: `${path}\n\nIts photos leave the catalog. The files themselves are not touched.`,
      confirmLabel: 'Remove folder',
      danger: true,
    });
    if (!ok) return;
    try {
      await api.removeRoot(path);
      app.toast('Folder removed', { kind: 'success' });
      await app.refreshOverview();
    } catch (e) {
      app.toastError(e, 'Could not remove the folder');
    }
  }

  async function saveWriteMode(mode) {
    try {
      // Tiles unchanged (null): a write mode is saved on its own.
      await api.saveSettings(mode, null);
      settings = { ...(settings || {}), writeMode: mode };
      app.toast(`Locations will be written: ${WRITE_MODES.find((m) => m[0] === mode)?.[1] || mode}`, { kind: 'success' });
    } catch (e) {
      app.toastError(e, 'Could not save the write mode');
      applySettings(settings);
    }
  }

  async function saveTiles() {
    const tiles = { enabled: tilesEnabled.checked, url: tilesUrl.value.trim(), attribution: tilesAttr.value.trim() };
    // The shell checks the template too (and is the one that decides); this says why at once.
    const problem = tileUrlProblem(tiles.url);
    if ((tiles.enabled || tiles.url) && problem) {
      app.toast(problem.message, { kind: 'error' });
      tilesUrl.focus();
      return;
    }
    if (tiles.enabled) {
      if (!tiles.attribution) {
        app.toast('Please enter the attribution the tile provider asks for', { kind: 'error' });
        tilesAttr.focus();
        return;
      }
    }
    const mode = settings?.writeMode || app.store.get().overview?.writeMode || 'embed';
    tilesSave.disabled = true;
    try {
      await api.saveSettings(mode, tiles);
      settings = { writeMode: mode, tiles };
      setTiles(tiles);
      app.toast(tiles.enabled ? 'Online map enabled. Pinpoint fetches the tiles and keeps those you have seen, so they also show offline.' : 'Online map off — nothing is fetched from the internet', { kind: 'success' });
      app.refreshOverview().catch(() => {});
    } catch (e) {
      app.toastError(e, 'Could not save the map settings');
    } finally {
      tilesSave.disabled = false;
    }
  }

  async function undoBatch(b) {
    const ok = await confirmDialog({ title: 'Undo this change?', body: `${b.description || 'Batch ' + b.id} — the previous locations are restored.`, confirmLabel: 'Undo' });
    if (!ok) return;
    await app.undoBatch(b.id);
    loadHistory();
  }

  app.store.subscribe((s, changed) => {
    if (changed.includes('overview')) renderOverview();
  });
  renderOverview();

  return {
    show() {
      if (!loadedOnce) {
        loadedOnce = true;
        loadSettings();
      }
      loadRefdbs();
      loadCameras();
      loadHistory();
      renderOverview();
    },
    hide() {},
    refresh(what) {
      if (what.has('locations')) loadHistory();
      if (what.has('proposals') || what.has('settings')) loadCameras();
      if (what.has('roots')) renderOverview();
    },
    onKey() {
      return false;
    },
  };
}
