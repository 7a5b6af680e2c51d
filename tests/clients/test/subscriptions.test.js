// Issue events through urql and graphql-ws, set up as an app sets them up
// (src/urql.js). The assignee subscribes on one server; the creator's mutations go
// through TRIAGE_SECOND_URL when there is a second replica (with PostgreSQL, whose
// LISTEN/NOTIFY carries the events across), else through the same server.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { gql } from '@urql/core';
import WebSocket from 'ws';

import { createUrqlClient } from '../src/urql.js';
import { graphqlUrl, person, secondGraphqlUrl } from './helpers.js';

const REGISTER = gql`
  mutation Register($input: RegisterInput!) {
    register(input: $input) { accessToken user { id username } }
  }
`;
const CREATE_ISSUE = gql`
  mutation CreateIssue($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }
`;
const UPDATE_ISSUE = gql`
  mutation UpdateIssue($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }
`;
const DELETE_ISSUE = gql`
  mutation DeleteIssue($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }
`;
const MY_ISSUE_EVENTS = gql`
  subscription MyIssueEvents {
    issueEvents(filter: { assignedToMe: true }) {
      kind
      issueId
      at
      actor { username }
      issue { id title status }
    }
  }
`;

/** How long an event may take to arrive. */
const EVENT_TIMEOUT_MS = 10_000;

/** Events as they arrive, and promises for the ones still to come. */
class Inbox {
  events = [];
  errors = [];
  #waiters = [];

  push(event) {
    this.events.push(event);
    this.#wake();
  }

  /** The subscription failed: nothing more will come. */
  fail(error) {
    this.errors.push(error);
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`the subscription failed: ${error}`));
    }
  }

  /** Resolves once `predicate(events)` holds; rejects after `ms`, saying what came. */
  until(predicate, what, ms = EVENT_TIMEOUT_MS) {
    if (predicate(this.events)) return Promise.resolve();
    if (this.errors.length > 0) return Promise.reject(new Error(`the subscription failed: ${this.errors[0]}`));
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve, reject };
      waiter.timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(this.events, null, 1)}`));
      }, ms);
      this.#waiters.push(waiter);
    });
  }

  #wake() {
    for (const waiter of [...this.#waiters]) {
      if (waiter.predicate(this.events)) {
        clearTimeout(waiter.timer);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        waiter.resolve();
      }
    }
  }
}

/** A registered person with an urql client of their own on the server at `url`. */
async function signUp(name, url, clients) {
  const session = { accessToken: null };
  const { client, wsClient } = createUrqlClient({
    url,
    getToken: () => session.accessToken,
    webSocketImpl: WebSocket,
  });
  clients.push(wsClient);
  const input = person(name);
  const result = await client.mutation(REGISTER, { input }).toPromise();
  assert.ifError(result.error);
  Object.assign(session, result.data.register);
  return { client, user: result.data.register.user };
}

async function mutate(client, document, input) {
  const result = await client.mutation(document, { input }).toPromise();
  assert.ifError(result.error);
  return result.data;
}

describe('urql and graphql-ws: issue events', () => {
  const wsClients = [];
  after(async () => {
    await Promise.all(wsClients.map((ws) => ws.dispose()));
  });

  it('tell the assignee of an issue what happens to it, in order', async () => {
    const creator = await signUp('carol', secondGraphqlUrl(), wsClients);
    const assignee = await signUp('dave', graphqlUrl(), wsClients);

    const inbox = new Inbox();
    const subscription = assignee.client.subscription(MY_ISSUE_EVENTS, {}).subscribe((result) => {
      if (result.error) inbox.fail(result.error);
      else inbox.push(result.data.issueEvents);
    });
    try {
      // The protocol does not say when a subscription is live, so create issues for
      // the assignee until one of them is heard of.
      for (let attempt = 1; inbox.events.length === 0; attempt++) {
        await mutate(creator.client, CREATE_ISSUE, { title: `Warm-up ${attempt}`, assignedTo: assignee.user.id });
        await inbox.until((events) => events.length > 0, 'first event', 500).catch((error) => {
          if (attempt === 20 || inbox.errors.length > 0) throw error;
        });
      }

      const { createIssue } = await mutate(creator.client, CREATE_ISSUE, {
        title: 'Export to CSV',
        assignedTo: assignee.user.id,
      });
      const id = createIssue.issue.id;
      const mine = () => inbox.events.filter((event) => event.issueId === id);
      const heard = (kind) => inbox.until(() => mine().some((event) => event.kind === kind), `${kind} event`);

      await heard('ASSIGNED');
      await mutate(creator.client, UPDATE_ISSUE, { id, title: 'Export to CSV and JSON' });
      await heard('UPDATED');
      await mutate(creator.client, UPDATE_ISSUE, { id, status: 'CLOSED' });
      await heard('CLOSED');
      await mutate(creator.client, DELETE_ISSUE, { id });
      await heard('DELETED');

      const events = mine();
      assert.deepEqual(
        events.map((event) => event.kind),
        ['CREATED', 'ASSIGNED', 'UPDATED', 'CLOSED', 'DELETED'],
      );
      for (const event of events) {
        assert.equal(event.actor.username, creator.user.username, event.kind);
        assert.ok(!Number.isNaN(Date.parse(event.at)), `${event.kind} at ${event.at}`);
      }
      const [created, assigned, updated, closed, deleted] = events;
      const { title, status } = created.issue;
      assert.deepEqual({ id: created.issue.id, title, status }, { id, title: 'Export to CSV', status: 'OPEN' });
      assert.equal(assigned.issue.id, id);
      assert.equal(updated.issue.title, 'Export to CSV and JSON');
      assert.equal(closed.issue.status, 'CLOSED');
      assert.equal(deleted.issue, null);
      assert.deepEqual(inbox.errors, []);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('close a connection with a bad token with code 4403', async () => {
    let closed;
    const closedWith = new Promise((resolve) => {
      closed = resolve;
    });
    const { client, wsClient } = createUrqlClient({
      url: graphqlUrl(),
      getToken: () => 'v4.local.not-a-token',
      webSocketImpl: WebSocket,
      ws: { retryAttempts: 0, on: { closed: (event) => closed(event) } },
    });
    wsClients.push(wsClient);
    const results = [];
    const subscription = client.subscription(MY_ISSUE_EVENTS, {}).subscribe((result) => results.push(result));
    try {
      let timer;
      const event = await Promise.race([
        closedWith,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('the connection stayed open')), EVENT_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.equal(event.code, 4403, `closed with ${event.code} ${event.reason}`);
      assert.ok(results.every((result) => result.data === undefined), 'no events for a bad token');
    } finally {
      subscription.unsubscribe();
    }
  });
});
