// The README quotes the client set-up modules; the quotes must be the code the
// other tests run.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';

const here = (path) => new URL(path, import.meta.url);

for (const module of ['apollo.js', 'urql.js']) {
  test(`the README quotes src/${module} as it is`, async () => {
    const [readme, code] = await Promise.all([
      readFile(here('../../../README.md'), 'utf8'),
      readFile(here(`../src/${module}`), 'utf8'),
    ]);
    assert.ok(readme.includes('```js\n' + code + '```\n'), `README.md differs from tests/clients/src/${module}`);
  });
}
