import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  haversineM, normalizeLon, lonNear, unwrapRing, unwrapPolygon, unwrapMultiPolygon,
  polygonsForDisplay, splitLineAtAntimeridian, linesForDisplay, labelPoint, lonInterval,
  boundsOf, ringLonExtent, ringArea,
} from '../src/lib/geo.js';

const require = createRequire(import.meta.url);
const topojson = require('topojson-client');
const world = require('world-atlas/countries-50m.json');
const countries = topojson.feature(world, world.objects.countries).features;
const country = (name) => countries.find((f) => f.properties.name === name);

const maxJump = (ring) => {
  let m = 0;
  for (let i = 1; i < ring.length; i++) m = Math.max(m, Math.abs(ring[i][0] - ring[i - 1][0]));
  return m;
};

test('haversine distances', () => {
  // Paris → London ≈ 344 km
  const d = haversineM(48.8566, 2.3522, 51.5074, -0.1278);
  assert.ok(Math.abs(d - 343_500) < 2000, String(d));
  // Across the antimeridian, Fiji: 1° of longitude at 17° S ≈ 106 km, not 40,000 km
  const f = haversineM(-17, 179.5, -17, -179.5);
  assert.ok(Math.abs(f - 106_300) < 1000, String(f));
  assert.equal(haversineM(1, 2, 1, 2), 0);
});

test('longitude helpers', () => {
  assert.equal(normalizeLon(190), -170);
  assert.equal(normalizeLon(-180), -180);
  assert.equal(normalizeLon(180), -180);
  assert.equal(normalizeLon(-540), -180);
  assert.equal(lonNear(-179, 179), 181);
  assert.equal(lonNear(10, 0), 10);
});

test('Russia: the mainland ring that crosses 180° is unwrapped, not streaked across the map', () => {
  const russia = country('Russia');
  assert.ok(russia, 'Russia is in world-atlas');
  const polys = russia.geometry.coordinates;
  // Find the parts that really cross (consecutive points more than 180° apart).
  const crossing = polys.filter((p) => maxJump(p[0]) > 180);
  assert.ok(crossing.length >= 1, 'world-atlas has Russian rings that cross the antimeridian');
  for (const poly of crossing) {
    const { ring, polar, shifted } = unwrapRing(poly[0]);
    assert.equal(polar, false);
    assert.equal(shifted, true);
    assert.equal(ring.length, poly[0].length);
    assert.ok(maxJump(ring) < 180, 'no more jumps');
    const [w, e] = ringLonExtent(ring);
    assert.ok(e > 180 || w < -180, `runs on past the antimeridian (${w}..${e})`);
    assert.ok(e - w < 200, `one contiguous shape, not a world-wide band (${w}..${e})`);
    // Still a closed ring, and latitudes untouched.
    assert.deepEqual(ring[0], ring[ring.length - 1]);
    ring.forEach((p, i) => assert.equal(p[1], poly[0][i][1]));
  }
  // The mainland (largest part) runs from Europe to Chukotka, past 180°.
  const mainland = polys.reduce((a, b) => (ringArea(b[0]) > ringArea(a[0]) ? b : a));
  const [mw, me] = ringLonExtent(unwrapRing(mainland[0]).ring);
  assert.ok(me > 185 && me < 195, `mainland east edge ${me}`);
  assert.ok(mw > 20 && mw < 40, `mainland west edge ${mw}`);
  // The mainland is the largest part: its label lands in Siberia, not in the Atlantic.
  const lp = labelPoint(russia.geometry);
  assert.ok(lp.lon > 60 && lp.lon < 130, `label lon ${lp.lon}`);
  assert.ok(lp.lat > 50 && lp.lat < 75, `label lat ${lp.lat}`);
});

test('Fiji: parts on both sides of 180° are glued together', () => {
  const fiji = country('Fiji');
  const glued = unwrapMultiPolygon(fiji.geometry);
  assert.equal(glued.length, fiji.geometry.coordinates.length);
  for (const p of glued) assert.ok(maxJump(p[0]) < 180);
  // Every part that touched the antimeridian now sits on the same side as the main islands.
  const exts = glued.map((p) => ringLonExtent(p[0]));
  const touching = exts.filter(([w, e]) => e >= 179.999 || w <= -179.999 || e > 180);
  assert.ok(touching.length >= 2);
  for (const [w] of touching) assert.ok(w > 170, `touching part starts at ${w}`);
  const lp = labelPoint(fiji.geometry);
  assert.ok(Math.abs(lp.lat + 17.8) < 1.5, `Fiji label lat ${lp.lat}`);
  assert.ok(Math.abs(Math.abs(lp.lon) - 178.5) < 2, `Fiji label lon ${lp.lon}`);
});

test('display polygons repeat the part beyond the edge on the other side', () => {
  const russia = country('Russia');
  const disp = polygonsForDisplay(russia.geometry, 30);
  for (const p of disp) assert.ok(maxJump(p[0]) < 180, 'no streaks');
  // Every crossing part (Chukotka's mainland, Wrangel Island) also shows 360° away, so the map
  // has land on both sides of the antimeridian.
  const crossing = russia.geometry.coordinates.filter((p) => maxJump(p[0]) > 180).map((p) => unwrapRing(p[0]).ring);
  for (const ring of crossing) {
    const [w, e] = ringLonExtent(ring);
    const shift = e > 180 ? -360 : 360;
    const copy = disp.find((p) => {
      const [cw, ce] = ringLonExtent(p[0]);
      return Math.abs(cw - (w + shift)) < 1e-9 && Math.abs(ce - (e + shift)) < 1e-9;
    });
    assert.ok(copy, `copy of the part spanning ${w}..${e}`);
    const [cw, ce] = ringLonExtent(copy[0]);
    assert.ok(cw < 180 && ce > -180, 'the copy reaches into the -180..180 map');
  }
  // Parts far from the antimeridian (Kaliningrad, at 20° E) are not copied.
  const kaliningrad = disp.filter((p) => {
    const [w, e] = ringLonExtent(p[0]);
    return w > 19 && e < 23;
  });
  assert.ok(kaliningrad.length >= 1);
  assert.ok(!disp.some((p) => ringLonExtent(p[0])[0] > 330 || ringLonExtent(p[0])[1] < -300), 'no copies of western parts');
  // Band 0 copies only what really crosses.
  const tight = polygonsForDisplay(russia.geometry, 0);
  assert.equal(tight.length, russia.geometry.coordinates.length + crossing.length);
});

test('a Fijian island east of 180° is also drawn west of it (for a map centred on Fiji)', () => {
  const fiji = country('Fiji');
  const disp = polygonsForDisplay(fiji.geometry, 30);
  const east = fiji.geometry.coordinates.filter((p) => ringLonExtent(p[0])[1] < -170 && maxJump(p[0]) < 180);
  assert.ok(east.length >= 1, 'Fiji has islands just east of 180°');
  for (const p of east) {
    const [w] = ringLonExtent(p[0]);
    assert.ok(disp.some((q) => Math.abs(ringLonExtent(q[0])[0] - (w + 360)) < 1e-9), `copy of island at ${w}`);
  }
});

test('polar rings (Antarctica) are left alone', () => {
  const ant = country('Antarctica');
  const polar = ant.geometry.coordinates.map((p) => unwrapRing(p[0])).filter((r) => r.polar);
  assert.ok(polar.length >= 1);
  const ring = ant.geometry.coordinates.find((p) => unwrapRing(p[0]).polar)[0];
  assert.deepEqual(unwrapRing(ring).ring, ring);
  assert.ok(ringArea(ring) > 0);
});

test('a synthetic square across 180° unwraps to one contiguous square', () => {
  const sq = [[179, 0], [-179, 0], [-179, 1], [179, 1], [179, 0]];
  assert.deepEqual(unwrapRing(sq).ring, [[179, 0], [181, 0], [181, 1], [179, 1], [179, 0]]);
  const poly = unwrapPolygon([sq, [[179.5, 0.2], [-179.5, 0.2], [-179.5, 0.8], [179.5, 0.2]]]);
  assert.ok(ringLonExtent(poly[1])[1] <= 181);
});

test('lines split at the antimeridian', () => {
  assert.deepEqual(splitLineAtAntimeridian([[170, 0], [179, 1], [-179, 2], [-170, 3]]), [
    [[170, 0], [179, 1]],
    [[-179, 2], [-170, 3]],
  ]);
  assert.equal(linesForDisplay({ type: 'LineString', coordinates: [[0, 0], [1, 1]] }).length, 1);
  const borders = topojson.mesh(world, world.objects.countries, (a, b) => a !== b);
  for (const l of linesForDisplay(borders)) assert.ok(maxJump(l) <= 180);
});

test('longitude intervals and bounds across the antimeridian', () => {
  assert.deepEqual(lonInterval([10, 20, 15]), [10, 20]);
  assert.deepEqual(lonInterval([179, -179, 178.5]), [178.5, 181]);
  assert.deepEqual(lonInterval([5]), [5, 5]);
  assert.equal(lonInterval([]), null);
  assert.deepEqual(boundsOf([{ lat: -16, lon: 179.5 }, { lat: -18, lon: -179.8 }]), [[-18, 179.5], [-16, 180.2]]);
  assert.equal(boundsOf([{ lat: null, lon: 1 }]), null);
});
