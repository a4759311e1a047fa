// Development-only fake engine: lets the UI run in a plain browser (index.html?mock or ?mock=100000).
// Copied to dist/ only by `node build.mjs --dev`. Implements the commands and events of ui/API.md.

const params = new URLSearchParams(location.search);
const N = Math.max(0, Number(params.get('mock')) || 3000);
const EMPTY = params.has('empty');

let seed = 42;
const rnd = () => {
  seed = (seed * 1664525 + 1013904223) % 4294967296;
  return seed / 4294967296;
};
const pick = (a) => a[Math.floor(rnd() * a.length)];

const CITIES = [
  ['FR', 'France', 'Île-de-France', 'Paris', 48.8566, 2.3522],
  ['FR', 'France', 'Provence-Alpes-Côte d’Azur', 'Nice', 43.7102, 7.262],
  ['IT', 'Italy', 'Lazio', 'Rome', 41.9028, 12.4964],
  ['IT', 'Italy', 'Tuscany', 'Florence', 43.7696, 11.2558],
  ['JP', 'Japan', 'Tokyo', 'Tokyo', 35.6762, 139.6503],
  ['JP', 'Japan', 'Kyoto', 'Kyoto', 35.0116, 135.7681],
  ['US', 'United States', 'New York', 'New York City', 40.7128, -74.006],
  ['US', 'United States', 'California', 'San Francisco', 37.7749, -122.4194],
  ['FJ', 'Fiji', 'Western', 'Nadi', -17.7765, 177.4356],
  ['FJ', 'Fiji', 'Northern', 'Labasa', -16.4167, 179.3833],
  ['NZ', 'New Zealand', 'Otago', 'Queenstown', -45.0312, 168.6626],
  ['IS', 'Iceland', 'Capital Region', 'Reykjavík', 64.1466, -21.9426],
  ['PT', 'Portugal', 'Lisbon', 'Lisbon', 38.7223, -9.1393],
];

const photos = [];
const proposals = new Map();
const suspicious = new Map();
let roots = EMPTY ? [] : [{ id: 1, path: '/home/anna/Pictures', lastScanCompletedAt: Date.now() / 1000 - 7200 }, { id: 2, path: '/media/anna/Archive/Photos 2009-2015', lastScanCompletedAt: null }];
const batches = [];
let nextBatch = 1;
const jobs = [];
let nextJob = 1;
let settings = { writeMode: 'sidecar', tiles: { enabled: false, url: '', attribution: '' } };
const refdbs = [
  { name: 'europe-landmarks', version: '2024.1', count: 182340, region: 'Europe', licence: 'CC BY-SA 4.0', attribution: 'Photos: Wikimedia Commons contributors', enabled: true, bytes: 412_000_000 },
  { name: 'japan-streets', version: '1.2', count: 50210, region: 'Japan', licence: 'CC BY 4.0', attribution: 'Mapillary contributors', enabled: false, bytes: 118_000_000 },
];

if (!EMPTY) {
  const t0 = Date.UTC(2012, 0, 1) / 1000;
  for (let i = 0; i < N; i++) {
    const c = pick(CITIES);
    const r = rnd();
    const id = i + 1;
    const t = new Date((t0 + i * 3600 * 7 + Math.floor(rnd() * 3000)) * 1000).toISOString().slice(0, 19);
    const lat = c[4] + (rnd() - 0.5) * 0.3;
    const lon = c[5] + (rnd() - 0.5) * 0.3;
    const p = { id, path: `/home/anna/Pictures/${t.slice(0, 4)}/${c[3]}/IMG_${String(1000 + i).padStart(5, '0')}.JPG`, name: `IMG_${String(1000 + i).padStart(5, '0')}.JPG`, status: 'present', lat: null, lon: null, source: null, takenAt: t, hasProposal: false, suspicious: false, _c: c };
    if (r < 0.62) Object.assign(p, { lat, lon, source: rnd() < 0.9 ? 'exif' : 'xmp' });
    else if (r < 0.66) Object.assign(p, { lat, lon, source: 'user' });
    else if (r < 0.86) {
      p.hasProposal = true;
      proposals.set(id, mkProposal(p, lat, lon));
    }
    if (p.lat !== null && rnd() < 0.015) {
      p.suspicious = true;
      const o = pick(CITIES);
      suspicious.set(id, { photoId: id, path: p.path, name: p.name, tagLat: p.lat, tagLon: p.lon, lat: o[4], lon: o[5], radiusM: 2500, confidence: 0.8 + rnd() * 0.19, distanceM: 0, evidence: evidence(o[4], o[5]) });
    }
    if (rnd() < 0.004) p.status = 'missing';
    photos.push(p);
  }
  for (const s of suspicious.values()) s.distanceM = hav(s.tagLat, s.tagLon, s.lat, s.lon);
}

function evidence(lat, lon) {
  const out = [];
  const n = 2 + Math.floor(rnd() * 5);
  for (let k = 0; k < n; k++) {
    const kind = k === n - 1 && rnd() < 0.4 ? 'time' : rnd() < 0.5 ? 'refdb' : 'photo';
    const elat = lat + (rnd() - 0.5) * 0.05;
    const elon = lon + (rnd() - 0.5) * 0.05;
    out.push({
      kind,
      photoId: kind === 'photo' ? 1 + Math.floor(rnd() * Math.max(1, N)) : null,
      refdb: kind === 'refdb' ? 'europe-landmarks' : null,
      refId: kind === 'refdb' ? String(1000 + Math.floor(rnd() * 9000)) : null,
      lat: elat,
      lon: elon,
      similarity: kind === 'time' ? null : 0.5 + rnd() * 0.45,
      distanceM: hav(lat, lon, elat, elon),
      note: kind === 'time' ? 'Taken 12 min after a located photo' : kind === 'refdb' ? 'Sacré-Cœur, north facade' : null,
      attribution: kind === 'refdb' ? 'Photo: J. Doe, CC BY-SA 4.0, via Wikimedia Commons' : null,
    });
  }
  return out;
}

function mkProposal(p, lat, lon) {
  return { photoId: p.id, path: p.path, name: p.name, lat, lon, radiusM: 300 + rnd() * 5000, confidence: 0.35 + rnd() * 0.64, sources: rnd() < 0.3 ? ['visual', 'time'] : ['visual'], status: 'pending', evidence: evidence(lat, lon) };
}

function hav(a, b, c, d) {
  const r = (x) => (x * Math.PI) / 180;
  const s = Math.sin(r(c - a) / 2) ** 2 + Math.cos(r(a)) * Math.cos(r(c)) * Math.sin(r(d - b) / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(s));
}

const listCache = new Map();
let version = 0;
const listeners = new Map();
function emit(event, payload) {
  if (event === 'catalog-changed') {
    version++;
    listCache.clear();
  }
  for (const fn of listeners.get(event) || []) setTimeout(() => fn(payload), 0);
}

function counts() {
  const c = { total: photos.length, tagged: 0, untagged: 0, proposed: 0, suspicious: suspicious.size, missing: 0 };
  for (const p of photos) {
    if (p.lat !== null) c.tagged++;
    else c.untagged++;
    if (p.status === 'missing') c.missing++;
  }
  for (const pr of proposals.values()) if (pr.status === 'pending') c.proposed++;
  return c;
}

function summary(p) {
  const { _c, ...rest } = p;
  return { ...rest, hasProposal: proposals.get(p.id)?.status === 'pending', suspicious: suspicious.has(p.id) };
}

function matches(p, f) {
  if (f.ids && !f.ids.includes(p.id)) return false;
  const s = summary(p);
  switch (f.kind) {
    case 'untagged': if (p.lat !== null) return false; break;
    case 'tagged': if (p.lat === null) return false; break;
    case 'proposed': if (!s.hasProposal) return false; break;
    case 'suspicious': if (!s.suspicious) return false; break;
    case 'missing': if (p.status !== 'missing') return false; break;
    default:
  }
  if (f.source && p.source !== f.source) return false;
  if (f.place) {
    if (p.lat === null || p._c[0] !== f.place.cc) return false;
    if (f.place.region && p._c[2] !== f.place.region) return false;
    if (f.place.city && p._c[3] !== f.place.city) return false;
  }
  return true;
}

function record(description, ids, apply) {
  const before = ids.map((id) => {
    const p = photos[id - 1];
    return { id, lat: p.lat, lon: p.lon, source: p.source, prop: proposals.get(id) && { ...proposals.get(id) }, susp: suspicious.get(id) };
  });
  apply();
  const b = { id: nextBatch++, createdAt: Date.now() / 1000, description, undoneBy: null, undoOf: null, edits: ids.map((id) => ({ path: photos[id - 1].path, target: settings.writeMode, state: 'done', error: null })), _before: before };
  batches.unshift(b);
  emit('catalog-changed', { what: 'locations' });
  return { batchId: b.id };
}

function simulateJob(kind, total, title) {
  const job = { id: nextJob++, kind, title, state: 'running', stage: kind === 'write' ? 'Writing' : 'Reading files', done: 0, total, ratePerS: null, etaS: null, startedAt: Date.now() / 1000, finishedAt: null, message: null, errors: [] };
  jobs.unshift(job);
  const tick = setInterval(() => {
    if (job.state === 'paused') return;
    if (job.state !== 'running') return clearInterval(tick);
    job.done = Math.min(total ?? 1e9, job.done + Math.ceil((total || 500) / 40));
    job.ratePerS = 120 + rnd() * 40;
    job.etaS = total ? (total - job.done) / job.ratePerS : null;
    if (rnd() < 0.1) job.errors = [...job.errors, { path: `/home/anna/Pictures/broken_${job.errors.length}.jpg`, reason: 'JPEG: unexpected end of file' }];
    if (total && job.done >= total) {
      job.state = 'done';
      job.finishedAt = Date.now() / 1000;
      job.etaS = null;
      clearInterval(tick);
      emit('catalog-changed', { what: 'photos' });
    }
    emit('job', { ...job, errors: [...job.errors] });
  }, 250);
  return { ...job };
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

const commands = {
  overview: () => ({ catalogPath: '/home/anna/.local/share/pinpoint/catalog.sqlite', roots, counts: counts(), device: 'CPU (8 threads, AVX2)', model: { name: 'netvlad-vgg16-pitts30k', hash: '3f9a0c2be71d44aa' }, writeMode: settings.writeMode, tiles: settings.tiles }),
  addRoot: ({ path }) => {
    if (!path.startsWith('/')) throw 'Not an absolute path: ' + path;
    const r = { id: roots.length + 1, path, lastScanCompletedAt: null };
    roots = [...roots, r];
    simulateJob('scan', 400, 'Scan ' + path);
    emit('catalog-changed', { what: 'roots' });
    return r;
  },
  pickFolder: () => '/home/anna/Pictures/Phone',
  removeRoot: ({ path }) => {
    roots = roots.filter((r) => r.path !== path);
    emit('catalog-changed', { what: 'roots' });
    return null;
  },
  listPhotos: ({ filter, offset, limit }) => {
    const key = JSON.stringify(filter) + version;
    if (!listCache.has(key)) listCache.set(key, photos.filter((p) => matches(p, filter)));
    const all = listCache.get(key);
    return { total: all.length, photos: all.slice(offset, offset + limit).map(summary) };
  },
  photoDetail: ({ id }) => {
    const p = photos[id - 1];
    if (!p) throw `No photo ${id}`;
    return { ...summary(p), size: 2_000_000 + id * 1000, format: 'jpeg', width: 6000, height: 4000, make: 'FUJIFILM', model: 'X-T3', alt: p.lat !== null ? 35 : null, sidecarPath: null, warnings: id % 17 === 0 ? ['DateTimeOriginal missing; used file time'] : [], place: p.lat !== null ? { cc: p._c[0], country: p._c[1], region: p._c[2], city: p._c[3] } : null, proposal: proposals.get(id) || null, suspiciousInfo: suspicious.get(id) || null };
  },
  mapPoints: () => {
    const out = { ids: [], lats: [], lons: [], sources: [] };
    for (const p of photos) if (p.lat !== null) {
      out.ids.push(p.id); out.lats.push(p.lat); out.lons.push(p.lon); out.sources.push(p.source);
    }
    return out;
  },
  reviewQueue: ({ minConfidence }) => [...proposals.values()].filter((p) => p.status === 'pending' && p.confidence >= minConfidence).sort((a, b) => b.confidence - a.confidence),
  acceptProposal: ({ photoId, lat, lon }) => {
    const pr = proposals.get(photoId);
    if (!pr) throw 'No proposal';
    return record(`Accept proposal for ${pr.name}`, [photoId], () => {
      const p = photos[photoId - 1];
      Object.assign(p, { lat: lat ?? pr.lat, lon: lon ?? pr.lon, source: 'proposal' });
      pr.status = 'accepted';
    });
  },
  rejectProposal: ({ photoId }) => {
    const pr = proposals.get(photoId);
    if (pr) pr.status = 'rejected';
    emit('catalog-changed', { what: 'proposals' });
    return null;
  },
  acceptAbove: ({ minConfidence }) => {
    const ids = [...proposals.values()].filter((p) => p.status === 'pending' && p.confidence >= minConfidence).map((p) => p.photoId);
    record(`Accept ${ids.length} proposals ≥ ${Math.round(minConfidence * 100)}%`, ids, () => {
      for (const id of ids) {
        const pr = proposals.get(id);
        Object.assign(photos[id - 1], { lat: pr.lat, lon: pr.lon, source: 'proposal' });
        pr.status = 'accepted';
      }
    });
    return simulateJob('write', ids.length, `Write ${ids.length} locations`);
  },
  setLocation: ({ photoIds, lat, lon }) => record(`Set location of ${photoIds.length} photo(s)`, photoIds, () => {
    for (const id of photoIds) {
      Object.assign(photos[id - 1], { lat, lon, source: 'user' });
      suspicious.delete(id);
    }
  }),
  clearLocation: ({ photoIds }) => record(`Clear location of ${photoIds.length} photo(s)`, photoIds, () => {
    for (const id of photoIds) {
      Object.assign(photos[id - 1], { lat: null, lon: null, source: null });
      suspicious.delete(id);
    }
  }),
  suspiciousList: () => [...suspicious.values()],
  keepTag: ({ photoId }) => {
    suspicious.delete(photoId);
    emit('catalog-changed', { what: 'locations' });
    return null;
  },
  history: ({ limit }) => batches.slice(0, limit).map(({ _before, ...b }) => b),
  undo: ({ batchId }) => {
    const b = batchId === null ? batches.find((x) => x.undoneBy === null && x.undoOf === null) : batches.find((x) => x.id === batchId);
    if (!b) throw 'Nothing to undo';
    if (b.undoneBy !== null) throw 'Already undone';
    for (const s of b._before) {
      Object.assign(photos[s.id - 1], { lat: s.lat, lon: s.lon, source: s.source });
      if (s.prop) proposals.set(s.id, s.prop);
      if (s.susp) suspicious.set(s.id, s.susp);
    }
    const u = { id: nextBatch++, createdAt: Date.now() / 1000, description: `Undo: ${b.description}`, undoneBy: null, undoOf: b.id, edits: b.edits, _before: [] };
    b.undoneBy = u.id;
    batches.unshift(u);
    emit('catalog-changed', { what: 'locations' });
    return { batchId: b.id, restored: b._before.length };
  },
  places: () => {
    const m = new Map();
    for (const p of photos) {
      if (p.lat === null) continue;
      const [cc, country, region, city, lat, lon] = p._c;
      if (!m.has(cc)) m.set(cc, { cc, country, count: 0, lat, lon, regions: new Map() });
      const c = m.get(cc);
      c.count++;
      if (!c.regions.has(region)) c.regions.set(region, { name: region, count: 0, lat, lon, cities: new Map() });
      const r = c.regions.get(region);
      r.count++;
      if (!r.cities.has(city)) r.cities.set(city, { name: city, count: 0, lat, lon });
      r.cities.get(city).count++;
    }
    return [...m.values()].map((c) => ({ ...c, regions: [...c.regions.values()].map((r) => ({ ...r, cities: [...r.cities.values()] })) }));
  },
  jobs: () => jobs.map((j) => ({ ...j })),
  startJob: ({ kind }) => simulateJob(kind, kind === 'update' ? 2400 : 900, { update: 'Update', scan: 'Scan', describe: 'Describe', propose: 'Propose' }[kind]),
  cancelJob: ({ id }) => { const j = jobs.find((x) => x.id === id); if (j) { j.state = 'cancelled'; j.finishedAt = Date.now() / 1000; emit('job', { ...j }); } return null; },
  pauseJob: ({ id }) => { const j = jobs.find((x) => x.id === id); if (j) { j.state = 'paused'; emit('job', { ...j }); } return null; },
  resumeJob: ({ id }) => { const j = jobs.find((x) => x.id === id); if (j) { j.state = 'running'; emit('job', { ...j }); } return null; },
  settings: () => ({ ...settings }),
  saveSettings: ({ writeMode, tiles }) => { settings = { writeMode, tiles }; return null; },
  refdbs: () => refdbs.map((r) => ({ ...r })),
  setRefdbEnabled: ({ name, enabled }) => { const r = refdbs.find((x) => x.name === name); if (r) r.enabled = enabled; return null; },
};

function svg(id, label) {
  const hue = (Number(id) * 47) % 360;
  const s = `<svg xmlns="http://www.w3.org/2000/svg" width="256" height="192" viewBox="0 0 256 192"><defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="hsl(${hue},45%,62%)"/><stop offset="1" stop-color="hsl(${(hue + 40) % 360},35%,28%)"/></linearGradient></defs><rect width="256" height="192" fill="url(#g)"/><path d="M0 150 L70 95 L120 130 L175 70 L256 140 V192 H0Z" fill="hsl(${hue},25%,18%)" opacity=".8"/><circle cx="200" cy="45" r="16" fill="hsl(${hue},80%,85%)" opacity=".8"/><text x="12" y="180" font-family="sans-serif" font-size="14" fill="#fff" opacity=".7">${label}</text></svg>`;
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(s)}`;
}

window.__PINPOINT_MOCK__ = {
  async invoke(name, args) {
    await delay(20 + rnd() * 60);
    const fn = commands[name];
    if (!fn) throw `Unknown command ${name}`;
    return JSON.parse(JSON.stringify(fn(args || {}) ?? null));
  },
  listen(event, handler) {
    if (!listeners.has(event)) listeners.set(event, new Set());
    listeners.get(event).add(handler);
    return () => listeners.get(event).delete(handler);
  },
  imageUrl(path) {
    const parts = path.split('/');
    return parts[0] === 'thumb' ? svg(parts[1], `#${parts[1]}`) : svg(parts[parts.length - 1], parts[1]);
  },
};
