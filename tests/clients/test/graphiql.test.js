// The GraphiQL page as a person uses it, in a real browser (Debian's chromium,
// driven by playwright-core): the documentation explorer lists Query's fields, a
// query signed in with a header typed into the headers editor answers, and an
// `issueEvents` subscription started from the page shows an event caused by a
// mutation made outside it.
//
// The page loads pinned versions from unpkg. This test answers those requests from
// the same packages in node_modules (package.json pins the same versions), so it runs
// without internet, and fails when the page asks for a version that is not the one
// installed: it answers 404, and the page's integrity hashes must match the files.
// Any other request off the server is refused and fails the test.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';

import { chromium } from 'playwright-core';

import { graphqlUrl, outputPath, person, secondGraphqlUrl } from './helpers.js';

const CHROMIUM = process.env.TRIAGE_CHROMIUM || '/usr/bin/chromium';
/** Names the screenshots: `run` says which database the suite runs on. */
const SUITE = process.env.TRIAGE_SUITE || 'local';
/** How long the page may take to show what a step waits for. */
const PATIENCE_MS = 15_000;

const CDN = 'https://unpkg.com';
const TYPES = { '.js': 'application/javascript', '.css': 'text/css', '.map': 'application/json' };

/** POSTs an operation from outside the page; returns `data`. */
async function graphql(url, query, variables = {}, token = undefined) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

async function register(url, name) {
  const data = await graphql(
    url,
    'mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id username } } }',
    { input: person(name) },
  );
  return data.register;
}

/**
 * Answers `https://unpkg.com/<package>@<version>/<file>` from node_modules, when
 * `<version>` is the installed one; anything else is a problem.
 */
async function answerFromNodeModules(route, problems) {
  const url = new URL(route.request().url());
  const match = /^\/((?:@[^/@]+\/)?[^/@]+)@([^/]+)\/(.+)$/.exec(decodeURIComponent(url.pathname));
  if (!match) {
    problems.push(`the page asked the CDN for an unpinned ${url.href}`);
    return route.fulfill({ status: 404, body: 'not pinned' });
  }
  const [, name, version, file] = match;
  const root = new URL(`../node_modules/${name}/`, import.meta.url);
  const installed = existsSync(new URL('package.json', root))
    ? JSON.parse(await readFile(new URL('package.json', root), 'utf8')).version
    : undefined;
  const path = new URL(file, root);
  if (installed !== version || !path.href.startsWith(root.href) || !existsSync(path)) {
    problems.push(`the page asked for ${name}@${version}/${file}; node_modules has ${name}@${installed ?? 'nothing'}`);
    return route.fulfill({ status: 404, body: 'not installed' });
  }
  const type = TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream';
  // As unpkg answers: the scripts are loaded with `crossorigin` (for their
  // integrity hashes), which needs CORS.
  return route.fulfill({
    status: 200,
    body: await readFile(path),
    headers: { 'content-type': type, 'access-control-allow-origin': '*' },
  });
}

/** Resolves once `condition()` holds; rejects after the patience, naming `what`. */
async function until(condition, what) {
  const deadline = Date.now() + PATIENCE_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${PATIENCE_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The text of the CodeMirror editor inside `selector`. */
function editorText(page, selector) {
  return page.locator(`${selector} .CodeMirror`).first().evaluate((element) => element.CodeMirror.getValue());
}

describe('GraphiQL at /graphql, in a browser', () => {
  let browser;
  let page;
  /** What went wrong in the page: errors, policy violations, refused requests. */
  const problems = [];
  /** Frames the page sent over WebSocket, parsed. */
  const sent = [];
  /** The operations the page POSTed to the server. */
  const posted = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: apt-get install chromium (or set TRIAGE_CHROMIUM)`);
    await mkdir(outputPath(), { recursive: true });
    // As root (CI, containers) Chromium's sandbox cannot start.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const server = new URL(graphqlUrl()).origin;
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.origin === server) return route.continue();
      if (url.origin === CDN) return answerFromNodeModules(route, problems);
      problems.push(`the page asked for ${url.href}`);
      return route.abort('blockedbyclient');
    });
    page = await context.newPage();
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline code'}`);
      });
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url() === graphqlUrl()) posted.push(request.postDataJSON());
    });
    page.on('websocket', (socket) => {
      socket.on('framesent', ({ payload }) => sent.push(JSON.parse(String(payload))));
    });
  });

  after(async () => {
    await browser?.close();
  });

  /** Runs `action`; on failure, says what went wrong in the page too. */
  async function step(what, action) {
    try {
      return await action();
    } catch (error) {
      await page?.screenshot({ path: outputPath(`graphiql-${SUITE}-failed.png`) }).catch(() => {});
      const inPage = problems.length > 0 ? `; in the page: ${JSON.stringify(problems, null, 1)}` : '';
      throw new Error(`${what}: ${error.message}${inPage}`, { cause: error });
    }
  }

  it('browses the schema, runs a signed-in query and a live subscription', { timeout: 120_000 }, async () => {
    const reader = await register(graphqlUrl(), 'gina');
    const writer = await register(secondGraphqlUrl(), 'hal');

    const response = await step('opening /graphql', () => page.goto(graphqlUrl()));
    assert.equal(response.status(), 200);
    const policy = response.headers()['content-security-policy'];
    assert.match(policy, /script-src 'sha256-[^']+' https:\/\/unpkg\.com\/react@/, policy);
    assert.doesNotMatch(policy, /unsafe-inline/, policy);

    // The explorer lists exactly the fields the schema gives Query.
    const expected = await graphql(graphqlUrl(), '{ __type(name: "Query") { fields { name } } }');
    const queryFields = expected.__type.fields.map((field) => field.name).sort();
    await step('listing Query in the documentation explorer', async () => {
      await page.getByRole('button', { name: 'Show Documentation Explorer' }).click({ timeout: PATIENCE_MS });
      const explorer = page.locator('.graphiql-doc-explorer');
      await explorer.locator('a.graphiql-doc-explorer-type-name', { hasText: /^Query$/ }).click({ timeout: PATIENCE_MS });
      await explorer.locator('.graphiql-doc-explorer-title', { hasText: /^Query$/ }).waitFor({ timeout: PATIENCE_MS });
      const listed = await explorer.locator('.graphiql-doc-explorer-field-name').allTextContents();
      assert.deepEqual([...new Set(listed)].sort(), queryFields);
    });
    assert.ok(
      posted.some((body) => body?.query?.includes('query IntrospectionQuery')),
      'the schema came from the standard introspection query',
    );

    await step('typing a token into the headers editor', async () => {
      await page.getByText('Headers', { exact: true }).click();
      const headers = page.locator('.graphiql-editor-tool .CodeMirror').filter({ visible: true });
      await headers.click();
      await page.keyboard.type(`{"Authorization": "Bearer ${reader.accessToken}"}`);
      const typed = await headers.evaluate((element) => element.CodeMirror.getValue());
      assert.deepEqual(JSON.parse(typed), { Authorization: `Bearer ${reader.accessToken}` }, typed);
    });

    /** Puts a named operation in the query editor and runs it. */
    const run = async (name, operation) => {
      await page
        .locator('.graphiql-query-editor .CodeMirror')
        .evaluate((element, text) => element.CodeMirror.setValue(text), operation);
      // GraphiQL parses the editor's text after a pause, and picks HTTP or the
      // WebSocket by what it parsed: the tab takes the operation's name when it has.
      await page.locator('.graphiql-tab', { hasText: name }).waitFor({ timeout: PATIENCE_MS });
      await page.getByRole('button', { name: /^Execute query/ }).click();
    };
    /** Waits for the response pane to hold `text`; returns the pane's JSON. */
    const answer = async (text, ms = PATIENCE_MS) => {
      await page.waitForFunction(
        (wanted) => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue().includes(wanted),
        text,
        { timeout: ms },
      );
      return JSON.parse(await editorText(page, '.graphiql-response'));
    };

    await step('running a signed-in query', async () => {
      await run('Me', 'query Me { me { username } }');
      assert.deepEqual(await answer(reader.user.username), { data: { me: { username: reader.user.username } } });
    });

    await step('running a subscription and hearing of a change made elsewhere', async () => {
      await run(
        'Watch',
        'subscription Watch { issueEvents(filter: { assignedToMe: true }) { kind issue { title } actor { username } } }',
      );
      await until(() => sent.some((frame) => frame.type === 'subscribe'), 'a subscribe message on a WebSocket');
      // The protocol does not say when a subscription is live: open issues for the
      // reader until the page shows one of them.
      let shown;
      for (let attempt = 1; !shown; attempt++) {
        const title = `Seen in GraphiQL ${attempt}`;
        await graphql(
          secondGraphqlUrl(),
          'mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }',
          { input: { title, assignedTo: reader.user.id } },
          writer.accessToken,
        );
        shown = await answer(title, 1_000).catch((error) => {
          if (attempt === 15) throw error;
        });
      }
      const event = shown.data.issueEvents;
      assert.match(event.kind, /^(CREATED|ASSIGNED)$/);
      assert.equal(event.actor.username, writer.user.username);
      const init = sent.find((frame) => frame.type === 'connection_init');
      assert.equal(init?.payload?.Authorization, `Bearer ${reader.accessToken}`, 'the typed header signed the socket in');
    });

    await page.screenshot({ path: outputPath(`graphiql-${SUITE}.png`) });
    assert.deepEqual(problems, []);
  });
});
