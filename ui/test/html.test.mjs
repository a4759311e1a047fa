import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeHtml, evidenceLabel, evidenceTooltip, pinIconHtml, clusterIconHtml } from '../src/lib/html.js';

const ATTACK = '<img src=x onerror=alert(1)>';

test('markup in names is escaped into text', () => {
  assert.equal(escapeHtml(ATTACK), '&lt;img src=x onerror=alert(1)&gt;');
  assert.equal(escapeHtml(`"a" & 'b'`), '&quot;a&quot; &amp; &#39;b&#39;');
  assert.equal(escapeHtml(null), '');
});

test('an evidence tooltip carries a database name and a file name as plain text', () => {
  // The tooltip is built from text (a text node in evidenceMarkers): the name comes out verbatim,
  // characters and all, and nothing of it is interpreted.
  const ref = { kind: 'refdb', refdb: ATTACK, similarity: 0.873 };
  assert.equal(evidenceLabel(ref), ATTACK);
  assert.equal(evidenceTooltip(ref), `${ATTACK} · 87%`);
  const photo = { kind: 'photo', name: `${ATTACK}.jpg`, similarity: 0.5 };
  assert.equal(evidenceTooltip(photo), `Your photo · ${ATTACK}.jpg · 50%`);
});

test('the HTML Leaflet icons get holds a file name only as escaped text', () => {
  const pin = pinIconHtml(`${ATTACK}.jpg`);
  assert.ok(!pin.includes('<img'), pin);
  assert.ok(pin.includes('&lt;img src=x onerror=alert(1)&gt;.jpg'), pin);
  // The only tags left are the icon's own.
  assert.deepEqual(pin.match(/<[a-z]+/g), ['<span', '<span']);
  assert.equal(pinIconHtml(''), '<span class="pin-head"></span>');
  const cluster = clusterIconHtml(ATTACK);
  assert.deepEqual(cluster.match(/<[a-z]+/g), ['<div', '<span']);
});

// Every view hands Leaflet nodes or escaped markup: no tooltip or popup is given a string built
// from data, and nothing assigns HTML to the DOM except the static icon markup of ui/dom.js.
test('no view passes a string built from data to an HTML sink', () => {
  const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const files = [];
  const walk = (d) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) {
        if (n !== 'vendor' && n !== 'data') walk(p);
      } else if (n.endsWith('.js')) files.push(p);
    }
  };
  walk(src);
  assert.ok(files.length > 10);
  const offenders = [];
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/\.(bindTooltip|bindPopup|setTooltipContent|setPopupContent|setContent)\(\s*([^,)]*)/g)) {
      const arg = m[2].trim();
      // A string literal, template literal or concatenation would be parsed as HTML.
      if (/^[`'"]/.test(arg) || /\+/.test(arg) || !/^(h\(|[A-Za-z_$][\w$]*$)/.test(arg)) offenders.push(`${f}: ${m[0]}`);
    }
    for (const m of text.matchAll(/(innerHTML\s*=|outerHTML\s*=|insertAdjacentHTML\(|document\.write\()/g)) {
      if (!(f.endsWith(join('ui', 'dom.js')) && /span\.innerHTML = `<svg/.test(text))) offenders.push(`${f}: ${m[0]}`);
    }
  }
  assert.deepEqual(offenders, []);
});
