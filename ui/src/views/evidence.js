// Evidence cards and map points, shared by Review and Suspicious.
import { evidenceImageUrl } from '../api.js';
import { h, icon, img } from '../ui/dom.js';
import { formatPercent, formatDistance } from '../lib/format.js';
import { evidenceLabel, evidenceTooltip } from '../lib/html.js';

export { evidenceLabel };

/** A horizontal strip of evidence cards. `onHover(index|null)`, `onPick(index)`. */
export function evidenceStrip(list, { onHover, onPick } = {}) {
  const items = Array.isArray(list) ? list : [];
  if (!items.length) {
    return h('div', { class: 'evidence-strip is-empty' }, h('span', { class: 'muted' }, 'No evidence was recorded for this proposal.'));
  }
  return h(
    'div',
    { class: 'evidence-strip', role: 'list' },
    items.map((ev, i) => {
      const src = evidenceImageUrl(ev);
      const media = src
        ? img(src, { className: 'evidence-img', alt: evidenceLabel(ev) })
        : h('div', { class: 'evidence-img evidence-icon' }, icon(ev.kind === 'gpx' ? 'route' : 'clock', 28));
      const facts = [];
      if (Number.isFinite(ev.similarity)) facts.push(h('span', { class: 'ev-sim' }, `${formatPercent(ev.similarity)} similar`));
      if (Number.isFinite(ev.distanceM)) facts.push(h('span', { class: 'ev-dist' }, `${formatDistance(ev.distanceM)} away`));
      // Geometric verification: the same scene, point for point (not only a similar look).
      if (ev.inliers > 0) facts.push(h('span', { class: 'ev-verified', title: `${ev.inliers} points match under one perspective` }, icon('check', 12), 'same scene'));
      const card = h(
        'div',
        { class: ['evidence-card', `ev-${ev.kind}`], role: 'listitem', tabindex: '0', dataset: { index: i } },
        media,
        h(
          'div',
          { class: 'evidence-text' },
          h('div', { class: 'ev-kind' }, evidenceLabel(ev)),
          ev.name ? h('div', { class: 'ev-name', title: ev.name }, ev.name) : null,
          facts.length ? h('div', { class: 'ev-facts' }, facts) : null,
          ev.note ? h('div', { class: 'ev-note', title: ev.note }, ev.note) : null,
          ev.kind === 'refdb' && ev.attribution ? h('div', { class: 'ev-attr', title: ev.attribution }, ev.attribution) : null,
        ),
      );
      if (onHover) {
        card.addEventListener('mouseenter', () => onHover(i));
        card.addEventListener('mouseleave', () => onHover(null));
        card.addEventListener('focus', () => onHover(i));
        card.addEventListener('blur', () => onHover(null));
      }
      if (onPick) card.addEventListener('click', () => onPick(i));
      return card;
    }),
  );
}

/** Adds evidence points to a Leaflet layer group; returns the circle markers by index. */
export function evidenceMarkers(L, group, list) {
  return (Array.isArray(list) ? list : []).map((ev) => {
    if (!Number.isFinite(ev.lat) || !Number.isFinite(ev.lon)) return null;
    const m = L.circleMarker([ev.lat, ev.lon], {
      radius: 5,
      color: '#0f1216',
      weight: 1.5,
      fillColor: ev.kind === 'refdb' ? '#b18cff' : ev.kind === 'photo' ? '#5fb3ff' : '#9aa4ae',
      fillOpacity: 0.95,
      className: 'evidence-point',
    });
    // A node, not a string: Leaflet would parse a string as HTML, and names are data.
    m.bindTooltip(h('span', {}, evidenceTooltip(ev)), { direction: 'top', offset: [0, -4] });
    m.addTo(group);
    return m;
  });
}

export function highlightMarker(markers, index) {
  markers.forEach((m, i) => {
    if (!m) return;
    const on = i === index;
    m.setStyle({ radius: on ? 9 : 5, weight: on ? 2.5 : 1.5, color: on ? '#ffffff' : '#0f1216' });
    if (on) m.bringToFront();
  });
}
