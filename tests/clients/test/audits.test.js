// The GraphQL-over-HTTP audits of graphql-http, run against the server: every MUST
// must pass, and every SHOULD too unless it is listed below (and in the README).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { serverAudits } from 'graphql-http';

import { graphqlUrl } from './helpers.js';

/** SHOULD audits the server knowingly fails, by id, with the reason. */
const ACCEPTED_SHOULD_FAILURES = new Map();

function table(results) {
  const rows = results.map((r) => [r.id, r.status, r.name + (r.status === 'ok' ? '' : ` (${r.reason})`)]);
  const width = (column) => Math.max(...rows.map((row) => row[column].length));
  const [id, status] = [width(0), width(1)];
  const tally = new Map();
  for (const r of results) tally.set(r.status, (tally.get(r.status) ?? 0) + 1);
  const counts = [...tally].map(([key, n]) => `${n} ${key}`).join(', ');
  return [
    `graphql-http audits of ${graphqlUrl()}: ${counts}`,
    ...rows.map(([a, b, c]) => `  ${a.padEnd(id)}  ${b.padEnd(status)}  ${c}`),
  ].join('\n');
}

test('the server passes the graphql-http audits', async () => {
  const results = [];
  for (const audit of serverAudits({ url: graphqlUrl(), fetchFn: fetch })) {
    const result = await audit.fn();
    results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason });
  }
  console.log(table(results));

  const level = (r) => r.name.split(' ')[0];
  const failedMust = results.filter((r) => level(r) === 'MUST' && r.status !== 'ok');
  assert.deepEqual(failedMust.map((r) => `${r.id} ${r.name}`), [], 'MUST audits failed');
  const failedShould = results.filter(
    (r) => level(r) === 'SHOULD' && r.status !== 'ok' && !ACCEPTED_SHOULD_FAILURES.has(r.id),
  );
  assert.deepEqual(failedShould.map((r) => `${r.id} ${r.name}`), [], 'SHOULD audits failed');
});
