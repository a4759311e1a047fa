// Leaflet maps with Pinpoint's offline base map (world-atlas land + borders + country names),
// loaded lazily the first time a map is shown, and the optional online tile layer from Settings.
// Leaflet (window.L) and topojson-client (window.topojson) are classic vendor scripts.
import { polygonsForDisplay, linesForDisplay, labelPoint } from '../lib/geo.js';
import { escapeHtml, pinIconHtml } from '../lib/html.js';
import { imageUrl } from '../api.js';

const L = () => window.L;

let atlasPromise = null;
let tiles = { enabled: false, url: '', attribution: '' };
const maps = new Set();

const OFFLINE_ATTRIBUTION = 'Base map: Natural Earth';

/** Loads and prepares the world-atlas data once (as ES modules, so no fetch/connect-src needed). */
export function loadAtlas() {
  if (!atlasPromise) {
    atlasPromise = (async () => {
      const topo = window.topojson;
      if (!topo) throw new Error('topojson-client did not load');
      const [countriesMod, landMod] = await Promise.all([
        import('../data/countries-50m.js'),
        import('../data/land-50m.js'),
      ]);
      const countries = countriesMod.default;
      const land = landMod.default;
      const landFeature = topo.feature(land, land.objects.land);
      const landGeoms = landFeature.type === 'FeatureCollection' ? landFeature.features.map((f) => f.geometry) : [landFeature.geometry];
      const landPolys = landGeoms.flatMap((g) => polygonsForDisplay(g));
      const borders = linesForDisplay(topo.mesh(countries, countries.objects.countries, (a, b) => a !== b));
      const labels = [];
      for (const f of topo.feature(countries, countries.objects.countries).features) {
        const name = f.properties && f.properties.name;
        if (!name || name === 'Antarctica') continue;
        const p = labelPoint(f.geometry);
        if (!p) continue;
        const minZoom = p.area >= 150 ? 2 : p.area >= 25 ? 3 : p.area >= 4 ? 4 : p.area >= 0.5 ? 5 : 6;
        labels.push({ name, lat: p.lat, lon: p.lon, minZoom });
      }
      return {
        land: { type: 'Feature', properties: {}, geometry: { type: 'MultiPolygon', coordinates: landPolys } },
        borders: { type: 'Feature', properties: {}, geometry: { type: 'MultiLineString', coordinates: borders } },
        labels,
      };
    })();
    atlasPromise.catch((e) => {
      console.error('base map', e);
      atlasPromise = null; // try again next time
    });
  }
  return atlasPromise;
}

/**
 * Creates a Leaflet map in `el` with the base map. Options: { minimap, labels, zoom, center }.
 * Returns the map; `map.ready` resolves once the base map is drawn.
 */
export function createMap(el, { minimap = false, labels = !minimap, center = [25, 10], zoom } = {}) {
  const Lf = L();
  if (!Lf) throw new Error('Leaflet did not load');
  const map = Lf.map(el, {
    preferCanvas: true,
    worldCopyJump: false,
    minZoom: minimap ? 0 : 2,
    maxZoom: 18,
    zoomSnap: 0.5,
    zoomDelta: 0.5,
    wheelPxPerZoomLevel: 90,
    maxBounds: [[-88, -215], [88, 215]],
    maxBoundsViscosity: 0.8,
    attributionControl: true,
    zoomControl: !minimap,
  });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(OFFLINE_ATTRIBUTION);
  map.setView(center, zoom ?? (minimap ? 1 : 2));

  map.createPane('basemap').style.zIndex = 150;
  map.getPane('basemap').style.pointerEvents = 'none';
  map.createPane('labels').style.zIndex = 390;
  map.getPane('labels').style.pointerEvents = 'none';
  map._ppRenderer = Lf.canvas({ pane: 'basemap', padding: 0.3 });
  map._ppLabels = labels;
  map._ppMinimap = minimap;

  // Leaflet measures its container; views are hidden with display:none, so re-measure on resize.
  if (typeof ResizeObserver !== 'undefined') {
    let raf = 0;
    const ro = new ResizeObserver(() => {
      cancelAnimationFrame(raf);
      raf = requestAnimationFrame(() => {
        if (el.offsetWidth && el.offsetHeight) map.invalidateSize({ pan: false });
      });
    });
    ro.observe(el);
    map.on('unload', () => ro.disconnect());
  }

  maps.add(map);
  map.on('unload', () => maps.delete(map));
  applyTiles(map);

  map.ready = loadAtlas()
    .then((atlas) => {
      drawBase(map, atlas);
      return map;
    })
    .catch((e) => {
      el.classList.add('map-nobase');
      throw e;
    });
  map.ready.catch(() => {});
  return map;
}

function drawBase(map, atlas) {
  const Lf = L();
  const renderer = map._ppRenderer;
  Lf.geoJSON(atlas.land, {
    pane: 'basemap',
    renderer,
    interactive: false,
    style: { stroke: true, color: '#3a424c', weight: 0.6, fillColor: '#252b33', fillOpacity: 1 },
  }).addTo(map);
  Lf.geoJSON(atlas.borders, {
    pane: 'basemap',
    renderer,
    interactive: false,
    style: { color: '#46505c', weight: 0.8, opacity: 0.9, fill: false },
  }).addTo(map);
  if (map._ppLabels) {
    const group = Lf.layerGroup().addTo(map);
    const markers = atlas.labels.map((l) => ({
      minZoom: l.minZoom,
      marker: Lf.marker([l.lat, l.lon], {
        pane: 'labels',
        interactive: false,
        keyboard: false,
        icon: Lf.divIcon({ className: 'country-label', html: `<span>${escapeHtml(l.name)}</span>`, iconSize: null }),
      }),
    }));
    const update = () => {
      const z = map.getZoom();
      const show = !(tiles.enabled && tiles.url) && z < 7;
      for (const m of markers) {
        const want = show && z >= m.minZoom;
        const has = group.hasLayer(m.marker);
        if (want && !has) group.addLayer(m.marker);
        else if (!want && has) group.removeLayer(m.marker);
      }
    };
    map._ppUpdateLabels = update;
    map.on('zoomend', update);
    update();
  }
}

function applyTiles(map) {
  const Lf = L();
  if (map._ppTiles) {
    map.removeLayer(map._ppTiles);
    map._ppTiles = null;
  }
  if (tiles.enabled && tiles.url) {
    // The shell fetches and caches the tiles (pinpoint:/tile/...): the webview may load nothing
    // from the network, and the shell refuses tiles while they are off.
    map._ppTiles = Lf.tileLayer(tileUrlTemplate(), {
      // Leaflet's attribution control takes HTML: the user's text is shown as text.
      attribution: escapeHtml(tiles.attribution || ''),
      maxZoom: 19,
      crossOrigin: false,
    }).addTo(map);
  }
  if (map._ppUpdateLabels) map._ppUpdateLabels();
}

/**
 * The zoom to show a place at: the offline base map (Natural Earth 1:50m) has nothing more to show
 * past a regional scale, so without online tiles views stop there and keep their context.
 */
export const OFFLINE_MAX_DETAIL_ZOOM = 8;
export function contextZoom(z) {
  return tiles.enabled ? z : Math.min(z, OFFLINE_MAX_DETAIL_ZOOM);
}

/** Leaflet's URL template for the shell's tile route (the same scheme as every pinpoint: image). */
export function tileUrlTemplate() {
  return imageUrl('tile/{z}/{x}/{y}');
}

/** Sets the online tile layer for every map (nothing is fetched unless enabled with a URL). */
export function setTiles(next) {
  const t = next || {};
  const changed = t.enabled !== tiles.enabled || t.url !== tiles.url || t.attribution !== tiles.attribution;
  tiles = { enabled: Boolean(t.enabled), url: String(t.url || ''), attribution: String(t.attribution || '') };
  if (changed) for (const m of maps) applyTiles(m);
}

/** A teardrop pin icon: kind = "proposal" | "tag" | "photo" | "place" | "drop". */
export function pinIcon(kind = 'proposal', label = '') {
  return L().divIcon({
    className: `pin pin-${kind}`,
    html: pinIconHtml(label),
    iconSize: [28, 36],
    iconAnchor: [14, 34],
  });
}

/** Re-measures a map after its view became visible. */
export function refreshSize(map) {
  if (map) requestAnimationFrame(() => map.invalidateSize({ pan: false }));
}
