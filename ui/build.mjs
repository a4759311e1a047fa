// Builds ui/dist/ from ui/src/ plus vendor files out of node_modules. No network, no bundler.
import { cp, mkdir, readFile, rm, writeFile, copyFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');
const nm = join(root, 'node_modules');
const started = Date.now();

function need(path) {
  if (!existsSync(path)) {
    console.error(`build: missing ${relative(root, path)} — run \`npm install\` in ui/ first`);
    process.exit(1);
  }
  return path;
}

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

// 1. The app itself.
await cp(src, dist, { recursive: true });

// 2. Vendor scripts and styles (loaded as classic scripts: window.L, window.topojson).
const vendor = join(dist, 'vendor');
await mkdir(join(vendor, 'images'), { recursive: true });
const files = [
  ['leaflet/dist/leaflet.js', 'leaflet.js'],
  ['leaflet/dist/leaflet.css', 'leaflet.css'],
  ['leaflet.markercluster/dist/leaflet.markercluster.js', 'leaflet.markercluster.js'],
  ['leaflet.markercluster/dist/MarkerCluster.css', 'MarkerCluster.css'],
  ['leaflet.markercluster/dist/MarkerCluster.Default.css', 'MarkerCluster.Default.css'],
  ['topojson-client/dist/topojson-client.min.js', 'topojson-client.min.js'],
];
for (const [from, to] of files) await copyFile(need(join(nm, from)), join(vendor, to));
for (const img of await readdir(need(join(nm, 'leaflet/dist/images')))) {
  await copyFile(join(nm, 'leaflet/dist/images', img), join(vendor, 'images', img));
}
// Source maps are referenced by the minified files; strip the comments so the webview does not ask.
for (const f of ['leaflet.js', 'leaflet.markercluster.js']) {
  const p = join(vendor, f);
  const text = await readFile(p, 'utf8');
  await writeFile(p, text.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n'));
}

// 3. Map data. The .json files as published, and the same data as ES modules: the app imports
//    the modules (allowed by script-src 'self'), so the base map needs no connect-src rule.
const data = join(dist, 'data');
await mkdir(data, { recursive: true });
for (const name of ['countries-50m', 'land-50m']) {
  const from = need(join(nm, 'world-atlas', `${name}.json`));
  const json = await readFile(from, 'utf8');
  JSON.parse(json); // fail loudly on a broken package
  await copyFile(from, join(data, `${name}.json`));
  await writeFile(join(data, `${name}.js`), `export default ${json.trim()};\n`);
}
await copyFile(need(join(nm, 'world-atlas', 'LICENSE')), join(data, 'world-atlas-LICENSE.txt'));

// Summary.
let count = 0;
let bytes = 0;
async function walk(dir) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await walk(p);
    else {
      count++;
      bytes += (await stat(p)).size;
    }
  }
}
await walk(dist);
console.log(
  `built ui/dist: ${count} files, ${(bytes / 1e6).toFixed(1)} MB in ${Date.now() - started} ms`,
);
