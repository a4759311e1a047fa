import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tileUrlProblem } from '../src/lib/tiles.js';

test('https tile templates are accepted', () => {
  assert.equal(tileUrlProblem('https://tile.openstreetmap.org/{z}/{x}/{y}.png'), null);
  assert.equal(tileUrlProblem('https://{s}.tile.example.org/{z}/{x}/{y}{r}.png'), null);
  // A tile server on this machine: nothing travels over a network.
  assert.equal(tileUrlProblem('http://127.0.0.1:8080/{z}/{x}/{y}.png'), null);
  assert.equal(tileUrlProblem('http://localhost/{z}/{x}/{y}.png'), null);
});

test('http tile servers are refused with the reason', () => {
  const p = tileUrlProblem('http://tile.example.org/{z}/{x}/{y}.png');
  assert.equal(p.insecure, true);
  assert.match(p.message, /http:\/\/ tile servers are refused/);
  assert.match(p.message, /https:\/\//);
  assert.equal(tileUrlProblem('HTTP://localhost.example.org/{z}/{x}/{y}.png').insecure, true);
});

test('broken templates say what is wrong', () => {
  assert.match(tileUrlProblem('file:///etc/{z}/{x}/{y}').message, /https:\/\//);
  assert.match(tileUrlProblem('tile.example.org/{z}/{x}/{y}').message, /https:\/\//);
  assert.match(tileUrlProblem('https://tile.example.org/{z}/{x}.png').message, /\{y\}/);
  assert.match(tileUrlProblem('https://tile.example.org/{z}/{x}/{y}.png?k={key}').message, /\{key\}/);
  assert.match(tileUrlProblem('https://a b/{z}/{x}/{y}').message, /spaces/);
  assert.match(tileUrlProblem('https://user@evil/{z}/{x}/{y}').message, /no server/);
});
