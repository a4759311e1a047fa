// Pure geographic helpers (no DOM, no Leaflet): distances, antimeridian handling for drawing
// world-atlas polygons in Leaflet's flat lon/lat space, label points, bounds.

const R = 6371008.8; // mean Earth radius, metres
const rad = (d) => (d * Math.PI) / 180;

/** Great-circle distance in metres. */
export function haversineM(lat1, lon1, lat2, lon2) {
  const dLat = rad(lat2 - lat1);
  const dLon = rad(lon2 - lon1);
  const a =
    Math.sin(dLat / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** Longitude into [-180, 180). */
export function normalizeLon(lon) {
  return ((((lon + 180) % 360) + 360) % 360) - 180;
}

/** Brings `lon` within 180° of `ref` by whole turns (for drawing a line or pin near another). */
export function lonNear(lon, ref) {
  return lon + 360 * Math.round((ref - lon) / 360);
}

/**
 * Makes a ring's longitudes continuous: whenever consecutive points jump by more than 180°
 * (the ring crosses the antimeridian), the rest of the ring is shifted by ±360°, so Russia's
 * mainland runs on past 180° instead of streaking back across the whole map.
 * A ring that winds around a pole (Antarctica) cannot be unwrapped; it is returned as a copy,
 * with `polar` set. Returns { ring, polar, shifted }.
 */
export function unwrapRing(ring) {
  if (!Array.isArray(ring) || ring.length === 0) return { ring: [], polar: false, shifted: false };
  const out = new Array(ring.length);
  let offset = 0;
  let shifted = false;
  out[0] = [ring[0][0], ring[0][1]];
  for (let i = 1; i < ring.length; i++) {
    const prev = ring[i - 1][0];
    const cur = ring[i][0];
    const d = cur - prev;
    if (d > 180) offset -= 360;
    else if (d < -180) offset += 360;
    if (offset !== 0) shifted = true;
    out[i] = [cur + offset, ring[i][1]];
  }
  if (offset !== 0) {
    // Net winding: a polar ring. Leave it as it is; the flat map draws it correctly.
    return { ring: ring.map((p) => [p[0], p[1]]), polar: true, shifted: false };
  }
  return { ring: out, polar: false, shifted };
}

/** Unwraps every ring of a polygon and keeps holes next to their outer ring. */
export function unwrapPolygon(polygon) {
  if (!Array.isArray(polygon) || polygon.length === 0) return [];
  const outer = unwrapRing(polygon[0]).ring;
  const [ow, oe] = ringLonExtent(outer);
  const mid = (ow + oe) / 2;
  const rings = [outer];
  for (let i = 1; i < polygon.length; i++) {
    const hole = unwrapRing(polygon[i]).ring;
    const [hw, he] = ringLonExtent(hole);
    const shift = lonNear((hw + he) / 2, mid) - (hw + he) / 2;
    rings.push(shift ? hole.map(([x, y]) => [x + shift, y]) : hole);
  }
  return rings;
}

/** [west, east] of a ring's longitudes. */
export function ringLonExtent(ring) {
  let w = Infinity;
  let e = -Infinity;
  for (const p of ring) {
    if (p[0] < w) w = p[0];
    if (p[0] > e) e = p[0];
  }
  return [w, e];
}

/** Planar area of a ring in square degrees, scaled by cos(latitude) so it ranks countries fairly. */
export function ringArea(ring) {
  let a = 0;
  for (let i = 0, n = ring.length, j = n - 1; i < n; j = i++) {
    const [x1, y1] = ring[j];
    const [x2, y2] = ring[i];
    a += (x1 * y2 - x2 * y1) * Math.cos(rad((y1 + y2) / 2));
  }
  return Math.abs(a / 2);
}

/** Area-weighted centroid [lon, lat] of a ring (flat lon/lat). */
export function ringCentroid(ring) {
  let a = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0, n = ring.length, j = n - 1; i < n; j = i++) {
    const [x1, y1] = ring[j];
    const [x2, y2] = ring[i];
    const f = x1 * y2 - x2 * y1;
    a += f;
    cx += (x1 + x2) * f;
    cy += (y1 + y2) * f;
  }
  if (Math.abs(a) < 1e-12) {
    // Degenerate ring: mean of its points.
    let sx = 0;
    let sy = 0;
    for (const p of ring) {
      sx += p[0];
      sy += p[1];
    }
    return [sx / ring.length, sy / ring.length];
  }
  a *= 0.5;
  return [cx / (6 * a), cy / (6 * a)];
}

/** The polygons of a Polygon or MultiPolygon geometry, as an array of polygons. */
export function polygonsOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === 'Polygon') return [geometry.coordinates];
  if (geometry.type === 'MultiPolygon') return geometry.coordinates;
  return [];
}

/**
 * Unwraps a (Multi)Polygon and moves the parts that touch the antimeridian to the side of the
 * largest part, so a country split at 180° (Russia, Fiji) becomes one contiguous shape.
 * Returns the polygons (array of polygons of rings). Polar rings are left alone.
 */
export function unwrapMultiPolygon(geometry) {
  const polys = polygonsOf(geometry).map(unwrapPolygon).filter((p) => p.length);
  if (polys.length < 2) return polys;
  let best = 0;
  let bestArea = -1;
  polys.forEach((p, i) => {
    const a = ringArea(p[0]);
    if (a > bestArea) {
      bestArea = a;
      best = i;
    }
  });
  const [bw, be] = ringLonExtent(polys[best][0]);
  const refMid = (bw + be) / 2;
  return polys.map((p, i) => {
    if (i === best) return p;
    const [w, e] = ringLonExtent(p[0]);
    const touches = w <= -179.999 || e >= 179.999 || w < -180 || e > 180;
    if (!touches) return p;
    const mid = (w + e) / 2;
    const shift = lonNear(mid, refMid) - mid;
    return shift ? p.map((ring) => ring.map(([x, y]) => [x + shift, y])) : p;
  });
}

/**
 * Polygons ready for a flat map: rings unwrapped (no streaks across the map), and every polygon
 * within `band` degrees of the antimeridian repeated 360° to the other side, so the map stays
 * continuous from -180 - band to 180 + band: the piece of Chukotka beyond 180° shows at the west
 * edge, and a view centred on Fiji (which Leaflet may show at 181°) has land on both sides.
 */
export function polygonsForDisplay(geometry, band = 30) {
  const out = [];
  for (const poly of polygonsOf(geometry)) {
    const p = unwrapPolygon(poly);
    if (!p.length) continue;
    out.push(p);
    const [w, e] = ringLonExtent(p[0]);
    if (e > 180 - band) out.push(p.map((ring) => ring.map(([x, y]) => [x - 360, y])));
    if (w < -180 + band) out.push(p.map((ring) => ring.map(([x, y]) => [x + 360, y])));
  }
  return out;
}

/** Splits a line wherever it jumps more than 180° in longitude (crosses the antimeridian). */
export function splitLineAtAntimeridian(line) {
  const parts = [];
  let cur = [];
  for (let i = 0; i < line.length; i++) {
    if (i > 0 && Math.abs(line[i][0] - line[i - 1][0]) > 180) {
      if (cur.length > 1) parts.push(cur);
      cur = [];
    }
    cur.push(line[i]);
  }
  if (cur.length > 1) parts.push(cur);
  return parts;
}

/** MultiLineString / LineString → display lines (split at the antimeridian). */
export function linesForDisplay(geometry) {
  if (!geometry) return [];
  const lines =
    geometry.type === 'LineString'
      ? [geometry.coordinates]
      : geometry.type === 'MultiLineString'
        ? geometry.coordinates
        : [];
  return lines.flatMap(splitLineAtAntimeridian);
}

/**
 * Where to write a country's name: the centroid of its largest part after unwrapping,
 * longitude normalised to [-180, 180). Returns { lon, lat, area } (area of all parts).
 */
export function labelPoint(geometry) {
  const polys = unwrapMultiPolygon(geometry);
  if (!polys.length) return null;
  let best = null;
  let bestArea = -1;
  let total = 0;
  for (const p of polys) {
    const a = ringArea(p[0]);
    total += a;
    if (a > bestArea) {
      bestArea = a;
      best = p[0];
    }
  }
  const [lon, lat] = ringCentroid(best);
  return { lon: normalizeLon(lon), lat, area: total };
}

/**
 * The narrowest longitude interval holding all `lons` (it may cross the antimeridian):
 * [west, east] with east ≥ west and east possibly > 180, as Leaflet's fitBounds wants it.
 */
export function lonInterval(lons) {
  const xs = lons.filter(Number.isFinite).map(normalizeLon).sort((a, b) => a - b);
  if (!xs.length) return null;
  if (xs.length === 1) return [xs[0], xs[0]];
  // The largest gap between neighbours (including the wrap-around gap) is what the interval skips.
  let gapAt = xs.length - 1; // gap from the last back round to the first
  let gap = xs[0] + 360 - xs[xs.length - 1];
  for (let i = 0; i < xs.length - 1; i++) {
    const g = xs[i + 1] - xs[i];
    if (g > gap) {
      gap = g;
      gapAt = i;
    }
  }
  if (gapAt === xs.length - 1) return [xs[0], xs[xs.length - 1]];
  return [xs[gapAt + 1], xs[gapAt] + 360];
}

/** Bounds [[south, west], [north, east]] of points [{lat, lon}], antimeridian-aware; null if none. */
export function boundsOf(points) {
  const pts = points.filter((p) => p && Number.isFinite(p.lat) && Number.isFinite(p.lon));
  if (!pts.length) return null;
  let s = Infinity;
  let n = -Infinity;
  for (const p of pts) {
    if (p.lat < s) s = p.lat;
    if (p.lat > n) n = p.lat;
  }
  const [w, e] = lonInterval(pts.map((p) => p.lon));
  return [
    [s, w],
    [n, e],
  ];
}

/** Zoom level that suits a place level when no better bounds are known. */
export function zoomForPlaceLevel(level) {
  return { country: 5, region: 7, city: 11 }[level] ?? 4;
}
