// Thin wrappers around the Tauri commands of ui/API.md. Every call resolves with the command's
// value or rejects with an Error whose message is the shell's text (shown to the user as a toast).

function tauri() {
  return typeof window !== 'undefined' ? window.__TAURI__ : undefined;
}

function mock() {
  return typeof window !== 'undefined' ? window.__PINPOINT_MOCK__ : undefined;
}

/** True inside the Pinpoint window (or the dev mock). */
export function isAvailable() {
  return Boolean(tauri()?.core?.invoke || mock());
}

function toError(e, name) {
  if (e instanceof Error) return e;
  if (typeof e === 'string') return new Error(e);
  if (e && typeof e.message === 'string') return new Error(e.message);
  try {
    return new Error(`${name}: ${JSON.stringify(e)}`);
  } catch {
    return new Error(`${name} failed`);
  }
}

/** Calls a command by name; arguments in camelCase. */
export async function call(name, args = {}) {
  const m = mock();
  const invoke = tauri()?.core?.invoke;
  if (!invoke && !m) throw new Error('Pinpoint’s engine is not connected (open this page in the Pinpoint app).');
  try {
    return await (invoke ? invoke(name, args) : m.invoke(name, args));
  } catch (e) {
    throw toError(e, name);
  }
}

/** Subscribes to an event; returns a function that unsubscribes. Never throws. */
export async function listen(event, handler) {
  const m = mock();
  const l = tauri()?.event?.listen;
  try {
    if (l) {
      const un = await l(event, (e) => handler(e?.payload));
      return typeof un === 'function' ? un : () => {};
    }
    if (m) return m.listen(event, handler);
  } catch (e) {
    console.error(`listen(${event})`, e);
  }
  return () => {};
}

/** The URL of an image served by the shell's pinpoint: protocol. `path` like "thumb/12/grid". */
export function imageUrl(path) {
  const p = String(path).replace(/^\/+/, '');
  const m = mock();
  if (m?.imageUrl) return m.imageUrl(p);
  const ua = typeof navigator !== 'undefined' ? navigator.userAgent || '' : '';
  return ua.includes('Windows') ? `http://pinpoint.localhost/${p}` : `pinpoint://localhost/${p}`;
}

export const thumbUrl = (id) => imageUrl(`thumb/${encodeURIComponent(id)}/grid`);
export const previewUrl = (id) => imageUrl(`thumb/${encodeURIComponent(id)}/preview`);
/** The CRN heat map of a photo under the model with `hash` (the hash keeps caches apart). */
export const explainUrl = (id, hash) =>
  imageUrl(`explain/${encodeURIComponent(id)}?model=${encodeURIComponent(hash || '')}`);
export const refUrl = (refdb, refId) =>
  imageUrl(`ref/${encodeURIComponent(refdb)}/${encodeURIComponent(refId)}`);

/** Image of an evidence item, or null for time/gpx evidence. */
export function evidenceImageUrl(ev) {
  if (!ev) return null;
  if (ev.kind === 'photo' && ev.photoId !== null && ev.photoId !== undefined) return thumbUrl(ev.photoId);
  if (ev.kind === 'refdb' && ev.refdb && ev.refId !== null && ev.refId !== undefined) return refUrl(ev.refdb, ev.refId);
  return null;
}

// ---- Commands (names and argument names exactly as in API.md) ----
export const overview = () => call('overview');
export const addRoot = (path) => call('addRoot', { path });
export const pickFolder = () => call('pickFolder');
export const confirmFolder = (path) => call('confirmFolder', { path });
/**
 * Adds a folder whose path the user typed: the shell first asks the user, in a dialog of its own,
 * to confirm it (a typed path is not a choice the shell saw). Resolves null when declined.
 */
export async function addTypedRoot(path) {
  if (!(await confirmFolder(path))) return null;
  return addRoot(path);
}
export const removeRoot = (path) => call('removeRoot', { path });
export const listPhotos = (filter, offset, limit) => call('listPhotos', { filter, offset, limit });
export const photoDetail = (id) => call('photoDetail', { id });
export const mapPoints = () => call('mapPoints');
export const reviewQueue = (minConfidence = 0) => call('reviewQueue', { minConfidence });
export const acceptProposal = (photoId, lat = null, lon = null) =>
  call('acceptProposal', { photoId, lat, lon });
export const rejectProposal = (photoId) => call('rejectProposal', { photoId });
export const reopenProposal = (photoId) => call('reopenProposal', { photoId });
export const acceptAbove = (minConfidence) => call('acceptAbove', { minConfidence });
export const setLocation = (photoIds, lat, lon) => call('setLocation', { photoIds, lat, lon });
export const clearLocation = (photoIds) => call('clearLocation', { photoIds });
export const suspiciousList = () => call('suspiciousList');
export const keepTag = (photoId) => call('keepTag', { photoId });
export const reopenSuspicious = (photoId) => call('reopenSuspicious', { photoId });
export const history = (limit = 50) => call('history', { limit });
export const undo = (batchId = null) => call('undo', { batchId });
export const places = () => call('places');
export const jobs = () => call('jobs');
export const startJob = (kind) => call('startJob', { kind });
export const cancelJob = (id) => call('cancelJob', { id });
export const pauseJob = (id) => call('pauseJob', { id });
export const resumeJob = (id) => call('resumeJob', { id });
export const settings = () => call('settings');
export const saveSettings = (writeMode, tiles) => call('saveSettings', { writeMode, tiles });
export const refdbs = () => call('refdbs');
export const cameras = () => call('cameras');
export const setCameraOffset = (camera, offset) => call('setCameraOffset', { camera, offset });
export const setRefdbEnabled = (name, enabled) => call('setRefdbEnabled', { name, enabled });
