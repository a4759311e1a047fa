// Checks a tile URL template the way the shell does (pinpoint::tiles::TileTemplate), so that
// Settings can say what is wrong before saving; the shell's check is the one that counts.

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Why `url` is not an acceptable tile template (`insecure` for http://), or null. */
export function tileUrlProblem(url) {
  const u = String(url ?? '').trim();
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/]*)/i.exec(u);
  if (!m) return { insecure: false, message: 'The URL template must start with https://' };
  const scheme = m[1].toLowerCase();
  const authority = m[2];
  const host = authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.split(':')[0];
  if (scheme === 'http' && !LOOPBACK.has(host.toLowerCase())) {
    return {
      insecure: true,
      message: 'http:// tile servers are refused: the tiles, and the places you look at, would travel unencrypted. Use the server’s https:// address.',
    };
  }
  if (scheme !== 'https' && scheme !== 'http') return { insecure: false, message: 'The URL template must start with https://' };
  if (!host || authority.includes('@')) return { insecure: false, message: 'The URL template names no server' };
  if (/\s/.test(u)) return { insecure: false, message: 'The URL template contains spaces' };
  if (!['{z}', '{x}', '{y}'].every((p) => u.includes(p))) {
    return { insecure: false, message: 'The URL template needs the {z}, {x} and {y} placeholders' };
  }
  const unknown = [...u.matchAll(/\{([^}]*)\}/g)].map((x) => x[1]).find((n) => !['z', 'x', 'y', 's', 'r'].includes(n));
  if (unknown !== undefined) return { insecure: false, message: `Unknown placeholder {${unknown}} (known: {z}, {x}, {y}, {s}, {r})` };
  return null;
}
