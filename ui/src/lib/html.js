// Text that reaches HTML. Strings from photos (paths, camera names, XMP text) and from downloaded
// reference databases (names, attribution, licence) are data, never markup: the views hand
// Leaflet DOM nodes built with text nodes, and the few places Leaflet only takes an HTML string
// (divIcon, attribution) get the text escaped here.
import { formatPercent } from './format.js';

export function escapeHtml(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

const KIND_LABEL = { photo: 'Your photo', refdb: 'Reference', time: 'Capture time', gpx: 'GPX track' };

/** What an evidence item is: the reference database's name, or the kind of evidence. */
export function evidenceLabel(ev) {
  if (ev.kind === 'refdb') return ev.refdb ? String(ev.refdb) : 'Reference';
  return KIND_LABEL[ev.kind] || String(ev.kind || 'Evidence');
}

/** The plain text of an evidence point's tooltip: label, file name, similarity. */
export function evidenceTooltip(ev) {
  const parts = [evidenceLabel(ev)];
  if (ev.name) parts.push(String(ev.name));
  if (Number.isFinite(ev.similarity)) parts.push(formatPercent(ev.similarity));
  if (ev.inliers > 0) parts.push(`verified, ${ev.inliers} matching points`);
  return parts.join(' · ');
}

/** The markup of a teardrop pin with an optional label (Leaflet's divIcon takes HTML). */
export function pinIconHtml(label = '') {
  return `<span class="pin-head"></span>${label ? `<span class="pin-label">${escapeHtml(label)}</span>` : ''}`;
}

/** The markup of a cluster bubble showing `label` (Leaflet's divIcon takes HTML). */
export function clusterIconHtml(label) {
  return `<div><span>${escapeHtml(label)}</span></div>`;
}
