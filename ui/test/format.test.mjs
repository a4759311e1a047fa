import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatCount, plural, formatClockOffset, formatCoord, formatLatLon, formatDate, formatDuration, formatClipLength, formatEta,
  formatRate, formatBytes, formatPercent, formatDistance, formatPixels, formatSource,
  formatProgress, jobFraction, shortenPath, formatAgo,
} from '../src/lib/format.js';

test('counts with thousands separators', () => {
  assert.equal(formatCount(0), '0');
  assert.equal(formatCount(999), '999');
  assert.equal(formatCount(1000), '1,000');
  assert.equal(formatCount(100000), '100,000');
  assert.equal(formatCount(-1234567), '-1,234,567');
  assert.equal(formatCount(null), '—');
  assert.equal(plural(1, 'photo'), '1 photo');
  assert.equal(plural(2000, 'photo'), '2,000 photos');
});

test('coordinates with hemispheres', () => {
  assert.equal(formatCoord(48.858372, 2.294481), '48.85837° N, 2.29448° E');
  assert.equal(formatCoord(-33.856784, 151.215297, 3), '33.857° S, 151.215° E');
  assert.equal(formatCoord(40.6892, -74.0445, 2), '40.69° N, 74.04° W');
  assert.equal(formatCoord(null, 2), '—');
  assert.equal(formatCoord(NaN, 2), '—');
  // Longitudes past the antimeridian (panned Leaflet maps) are normalised.
  assert.equal(formatCoord(-17, 181.5, 1), '17.0° S, 178.5° W');
  assert.equal(formatLatLon(1.5, -190), '1.500000, 170.000000');
});

test('capture dates are shown as recorded, without time zone shifts', () => {
  assert.equal(formatDate('2021-03-12T14:05:09'), '12 Mar 2021, 14:05');
  assert.equal(formatDate('2021-03-12T14:05:09+09:00', { seconds: true }), '12 Mar 2021, 14:05:09');
  assert.equal(formatDate('1999-12-31 23:59'), '31 Dec 1999, 23:59');
  assert.equal(formatDate('2020-02-01'), '1 Feb 2020');
  assert.equal(formatDate(null), '—');
  assert.equal(formatDate('garbage'), 'garbage');
  assert.equal(formatDate('2020-13-01'), '2020-13-01');
});

test('durations and ETAs', () => {
  assert.equal(formatDuration(0.2), '<1 s');
  assert.equal(formatDuration(42), '42 s');
  assert.equal(formatDuration(59.6), '1 min 00 s');
  assert.equal(formatDuration(185), '3 min 05 s');
  assert.equal(formatDuration(3600), '1 h 00 min');
  assert.equal(formatDuration(7620), '2 h 07 min');
  assert.equal(formatDuration(3 * 86400 + 4 * 3600), '3 d 4 h');
  assert.equal(formatDuration(-1), '—');
  assert.equal(formatDuration(Infinity), '—');
  assert.equal(formatEta(185), '3 min 05 s left');
  assert.equal(formatEta(null), '—');
  assert.equal(formatAgo(1000, 1010), 'just now');
  assert.equal(formatAgo(0, 7200), '2 h ago');
});

test('rates, bytes, percentages, distances, pixels', () => {
  assert.equal(formatRate(0.25), '0.25/s');
  assert.equal(formatRate(12.34), '12.3/s');
  assert.equal(formatRate(1204.4, 'photos'), '1,204 photos/s');
  assert.equal(formatRate(null), '—');
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1500), '1.50 kB');
  assert.equal(formatBytes(12_345_678), '12.3 MB');
  assert.equal(formatBytes(999_990), '1.00 MB');
  assert.equal(formatBytes(1.2e9), '1.20 GB');
  assert.equal(formatPercent(0.873), '87%');
  assert.equal(formatPercent(0.8735, 1), '87.4%');
  assert.equal(formatPercent(1.7), '100%');
  assert.equal(formatPercent(-1), '0%');
  assert.equal(formatDistance(850.4), '850 m');
  assert.equal(formatDistance(12_345), '12.3 km');
  assert.equal(formatDistance(1_234_567), '1,235 km');
  assert.equal(formatPixels(6000, 4000), '6000 × 4000 (24.0 MP)');
  assert.equal(formatPixels(null, 4000), '—');
  assert.equal(formatSource('exif'), 'Camera GPS (EXIF)');
  assert.equal(formatSource(null), 'No location');
});

test('job progress', () => {
  assert.equal(formatProgress(1234, 5000), '1,234 / 5,000');
  assert.equal(formatProgress(1234, null), '1,234');
  assert.equal(jobFraction({ state: 'running', done: 25, total: 100 }), 0.25);
  assert.equal(jobFraction({ state: 'running', done: 25, total: null }), null);
  assert.equal(jobFraction({ state: 'done', done: 0, total: null }), 1);
  assert.equal(jobFraction({ state: 'running', done: 200, total: 100 }), 1);
});

test('long paths keep their file name', () => {
  const p = '/home/anna/Pictures/2019/Holidays/Greece/Santorini/IMG_4821.JPG';
  const s = shortenPath(p, 36);
  assert.ok(s.length <= 36, s);
  assert.ok(s.endsWith('/IMG_4821.JPG'));
  assert.ok(s.includes('…'));
  assert.equal(shortenPath('/a/b.jpg', 36), '/a/b.jpg');
  assert.ok(shortenPath('C:\\Users\\anna\\Pictures\\2019\\Holidays\\IMG_1.JPG', 28).endsWith('\\IMG_1.JPG'));
});

test('video lengths read like a player\'s', () => {
  assert.equal(formatClipLength(0.171), '0:00');
  assert.equal(formatClipLength(4.97), '0:05');
  assert.equal(formatClipLength(760), '12:40');
  assert.equal(formatClipLength(3723), '1:02:03');
  assert.equal(formatClipLength(null), '—');
});

test('clock offsets read as people say them', () => {
  assert.equal(formatClockOffset(-4020), '−1 h 07 min');
  assert.equal(formatClockOffset(45), '+45 s');
  assert.equal(formatClockOffset(-4021), '−1 h 07 min 01 s');
  assert.equal(formatClockOffset(0), '0 s');
  assert.equal(formatClockOffset(3600), '+1 h');
  assert.equal(formatClockOffset(null), '—');
});
