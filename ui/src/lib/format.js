// Pure formatting helpers (no DOM): coordinates, dates, durations, sizes, percentages.
// Deterministic (no locale lookups) so the tests can pin the exact output.

const DASH = '—';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const isNum = (x) => typeof x === 'number' && Number.isFinite(x);

/** 12345678 → "12,345,678". */
export function formatCount(n) {
  if (!isNum(n)) return DASH;
  const sign = n < 0 ? '-' : '';
  const s = String(Math.round(Math.abs(n)));
  return sign + s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "1 photo" / "2,000 photos". */
export function plural(n, one, many = one + 's') {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** One coordinate with hemisphere: (48.858372, 'lat') → "48.85837° N". */
export function formatDegrees(value, axis, digits = 5) {
  if (!isNum(value)) return DASH;
  const hemi = axis === 'lat' ? (value < 0 ? 'S' : 'N') : (value < 0 ? 'W' : 'E');
  return `${Math.abs(value).toFixed(digits)}° ${hemi}`;
}

/** "48.85837° N, 2.29448° E"; "—" when either is missing. */
export function formatCoord(lat, lon, digits = 5) {
  if (!isNum(lat) || !isNum(lon)) return DASH;
  return `${formatDegrees(lat, 'lat', digits)}, ${formatDegrees(normalizeLonForDisplay(lon), 'lon', digits)}`;
}

/** Plain decimal pair for copying: "48.858370, 2.294480". */
export function formatLatLon(lat, lon, digits = 6) {
  if (!isNum(lat) || !isNum(lon)) return DASH;
  return `${lat.toFixed(digits)}, ${normalizeLonForDisplay(lon).toFixed(digits)}`;
}

function normalizeLonForDisplay(lon) {
  // Leaflet lets longitudes run past ±180 when the map is panned across the antimeridian.
  let x = ((((lon + 180) % 360) + 360) % 360) - 180;
  if (x === -180 && lon > 0) x = 180;
  return x;
}

/**
 * A capture time as the photo recorded it. EXIF times are local wall-clock times without a zone,
 * so the string is shown as written, never shifted into the viewer's zone.
 * "2021-03-12T14:05:09" → "12 Mar 2021, 14:05".
 */
export function formatDate(iso, { seconds = false } = {}) {
  if (typeof iso !== 'string' || !iso) return DASH;
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(iso);
  if (!m) return iso;
  const [, y, mo, d, hh, mm, ss] = m;
  const month = MONTHS[Number(mo) - 1];
  if (!month) return iso;
  let out = `${Number(d)} ${month} ${y}`;
  if (hh !== undefined) out += `, ${hh}:${mm}${seconds && ss !== undefined ? ':' + ss : ''}`;
  return out;
}

/** Unix seconds → "12 Mar 2021, 14:05" in the viewer's local time. */
export function formatUnix(sec) {
  if (!isNum(sec)) return DASH;
  const d = new Date(sec * 1000);
  const pad = (x) => String(x).padStart(2, '0');
  return `${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()}, ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago" from unix seconds. */
export function formatAgo(sec, nowSec = Date.now() / 1000) {
  if (!isNum(sec)) return DASH;
  const d = Math.max(0, nowSec - sec);
  if (d < 45) return 'just now';
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${Math.round(d / 3600)} h ago`;
  return `${Math.round(d / 86400)} d ago`;
}

/** A duration in seconds, compact: "<1 s", "42 s", "3 min 05 s", "2 h 07 min", "3 d 4 h". */
export function formatDuration(sec) {
  if (!isNum(sec) || sec < 0) return DASH;
  if (sec < 1) return '<1 s';
  const s = Math.round(sec);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  if (s < 86400) {
    const m = Math.round(s / 60);
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
  }
  const h = Math.round(s / 3600);
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** A video's length as players show it: "0:05", "12:40", "1:02:03"; "—" when unknown. */
export function formatClipLength(sec) {
  if (!isNum(sec) || sec < 0) return DASH;
  const s = Math.round(sec);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** ETA text for a job: "3 min 05 s left"; "—" when unknown. */
export function formatEta(sec) {
  const d = formatDuration(sec);
  return d === DASH ? DASH : `${d} left`;
}

/** Items per second: "12.3/s", "1,204/s", "0.25/s". */
export function formatRate(r, unit = '') {
  if (!isNum(r) || r < 0) return DASH;
  let v;
  if (r >= 100) v = formatCount(r);
  else if (r >= 10) v = r.toFixed(1);
  else if (r >= 1) v = r.toFixed(1);
  else v = r.toFixed(2);
  return `${v}${unit ? ' ' + unit : ''}/s`;
}

/** Decimal units as file managers show them: 0 B, 999 B, 1.5 kB, 12.3 MB, 1.20 GB. */
export function formatBytes(n) {
  if (!isNum(n) || n < 0) return DASH;
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  if (v >= 999.95 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${units[i]}`;
}

/** 0..1 → "87%"; clamped; digits after the point optional. */
export function formatPercent(x, digits = 0) {
  if (!isNum(x)) return DASH;
  const p = Math.min(1, Math.max(0, x)) * 100;
  return `${p.toFixed(digits)}%`;
}

/** Metres → "850 m", "12.3 km", "1,234 km". */
export function formatDistance(m) {
  if (!isNum(m) || m < 0) return DASH;
  if (m < 1000) return `${Math.round(m)} m`;
  const km = m / 1000;
  if (km < 100) return `${km.toFixed(1)} km`;
  return `${formatCount(km)} km`;
}

/** 6000×4000 → "6000 × 4000 (24.0 MP)". */
export function formatPixels(w, h) {
  if (!isNum(w) || !isNum(h)) return DASH;
  return `${w} × ${h} (${((w * h) / 1e6).toFixed(1)} MP)`;
}

const SOURCE_LABELS = {
  exif: 'Camera GPS (EXIF)',
  xmp: 'XMP metadata',
  sidecar: 'XMP sidecar',
  user: 'Placed by hand',
  proposal: 'Accepted proposal',
};

/** Where a photo's location came from, in words. */
export function formatSource(source) {
  if (!source) return 'No location';
  return SOURCE_LABELS[source] || String(source);
}

/** Job kinds/states in words. */
export function formatJobKind(kind) {
  return (
    {
      scan: 'Scan',
      describe: 'Describe',
      propose: 'Propose',
      update: 'Update',
      write: 'Write tags',
      undo: 'Undo',
      'refdb-install': 'Install reference database',
    }[kind] || String(kind || 'Job')
  );
}

/** "1,234 / 5,000" or "1,234" when the total is not known yet. */
export function formatProgress(done, total) {
  if (!isNum(done)) return DASH;
  return isNum(total) ? `${formatCount(done)} / ${formatCount(total)}` : formatCount(done);
}

/** Fraction 0..1 of a job, or null when indeterminate. */
export function jobFraction(job) {
  if (!job) return null;
  if (job.state === 'done') return 1;
  if (!isNum(job.total) || job.total <= 0 || !isNum(job.done)) return null;
  return Math.min(1, Math.max(0, job.done / job.total));
}

/** Shortens a long path for a narrow column, keeping the file name: "/a/…/x/y.jpg". */
export function shortenPath(path, max = 48) {
  if (typeof path !== 'string') return '';
  if (path.length <= max) return path;
  const sep = path.includes('\\') && !path.includes('/') ? '\\' : '/';
  const parts = path.split(sep);
  const name = parts.pop();
  let tail = sep + name;
  for (let i = parts.length - 1; i > 0; i--) {
    const candidate = sep + parts[i] + tail;
    if (candidate.length + parts[0].length + 2 > max) break;
    tail = candidate;
  }
  const out = `${parts[0]}${sep}…${tail}`;
  return out.length <= path.length ? out : path;
}

/** A clock offset as people say it: "+1 h 07 min", "−45 s", "0 s". */
export function formatClockOffset(seconds) {
  if (!Number.isFinite(seconds)) return '—';
  const sign = seconds < 0 ? '−' : '+';
  let s = Math.round(Math.abs(seconds));
  if (s === 0) return '0 s';
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  s %= 60;
  const parts = [];
  if (hours) parts.push(`${hours} h`);
  if (minutes) parts.push(`${hours ? String(minutes).padStart(2, '0') : minutes} min`);
  if (s || !parts.length) parts.push(`${parts.length ? String(s).padStart(2, '0') : s} s`);
  return sign + parts.join(' ');
}
