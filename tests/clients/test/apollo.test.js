// One user journey through Apollo Client, set up as an app sets it up
// (src/apollo.js): two people register and log in, one creates issues and pages
// through them, edits one and sees the edit in the cached list without a refetch,
// the other is refused, and the first renews the session and logs out.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { gql } from '@apollo/client/core/index.js';

import { createApolloClient } from '../src/apollo.js';
import { PASSWORD, errorCode, graphqlUrl, person } from './helpers.js';

const SESSION = gql`
  fragment Session on AuthPayload {
    accessToken
    refreshToken
    expiresAt
    tokenType
    user { id username }
  }
`;
const ISSUE = gql`
  fragment IssueFields on Issue {
    id
    title
    status
    assignedTo { id username }
    createdBy { id username }
  }
`;
const REGISTER = gql`
  mutation Register($input: RegisterInput!) { register(input: $input) { ...Session } }
  ${SESSION}
`;
const LOGIN = gql`
  mutation Login($input: LoginInput!) { login(input: $input) { ...Session } }
  ${SESSION}
`;
const REFRESH = gql`
  mutation Refresh($input: RefreshTokenInput!) { refreshToken(input: $input) { ...Session } }
  ${SESSION}
`;
const LOGOUT = gql`
  mutation Logout($input: LogoutInput!) { logout(input: $input) { success } }
`;
const ME = gql`
  query Me { me { id username } }
`;
const CREATE_ISSUE = gql`
  mutation CreateIssue($input: CreateIssueInput!) { createIssue(input: $input) { issue { ...IssueFields } } }
  ${ISSUE}
`;
const UPDATE_ISSUE = gql`
  mutation UpdateIssue($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { ...IssueFields } } }
  ${ISSUE}
`;
const ISSUES = gql`
  query Issues($first: Int, $after: String, $filter: IssueFilter) {
    issues(first: $first, after: $after, filter: $filter) {
      totalCount
      edges { cursor node { ...IssueFields } }
      pageInfo { hasNextPage endCursor }
    }
  }
  ${ISSUE}
`;

/** One person's app: an Apollo client with its own session and a log of its requests. */
function app() {
  const session = { accessToken: null, refreshToken: null, user: null };
  const requests = [];
  const client = createApolloClient({
    uri: graphqlUrl(),
    getToken: () => session.accessToken,
    fetch: (url, init) => {
      requests.push(JSON.parse(init.body).operationName);
      return fetch(url, init);
    },
  });
  const signIn = (payload) => Object.assign(session, payload);
  return { client, session, requests, signIn };
}

describe('Apollo Client: a journey through the API', () => {
  const ada = app();
  const bob = app();
  const created = [];
  let list;
  let listWatch;
  let listVariables;

  after(() => {
    listWatch?.unsubscribe();
    ada.client.stop();
    bob.client.stop();
  });

  it('registers two people, each logged in at once', async () => {
    for (const [who, name] of [[ada, 'ada'], [bob, 'bob']]) {
      const input = person(name);
      const { data } = await who.client.mutate({ mutation: REGISTER, variables: { input } });
      assert.equal(data.register.tokenType, 'Bearer');
      assert.equal(data.register.user.username, input.username);
      assert.ok(Date.parse(data.register.expiresAt) > Date.now());
      who.signIn(data.register);
    }
  });

  it('logs in with the username and password', async () => {
    const input = { username: bob.session.user.username, password: PASSWORD };
    const { data } = await bob.client.mutate({ mutation: LOGIN, variables: { input } });
    assert.equal(data.login.user.id, bob.session.user.id);
    assert.notEqual(data.login.refreshToken, bob.session.refreshToken);
    bob.signIn(data.login);
  });

  it('creates an issue assigned to the other person', async () => {
    const input = { title: 'Login page is slow', description: 'Takes 3 s on 3G', assignedTo: bob.session.user.id };
    const { data } = await ada.client.mutate({ mutation: CREATE_ISSUE, variables: { input } });
    const { issue } = data.createIssue;
    assert.equal(issue.title, 'Login page is slow');
    assert.equal(issue.status, 'OPEN');
    assert.deepEqual(issue.assignedTo, { __typename: 'User', ...bob.session.user });
    assert.deepEqual(issue.createdBy, { __typename: 'User', ...ada.session.user });
    created.push(issue.id);
  });

  it('pages through the issues with fetchMore into one cached list', async () => {
    for (const n of [2, 3, 4, 5]) {
      const { data } = await ada.client.mutate({ mutation: CREATE_ISSUE, variables: { input: { title: `Issue ${n}` } } });
      created.push(data.createIssue.issue.id);
    }
    listVariables = { first: 2, filter: { createdBy: ada.session.user.id } };
    list = ada.client.watchQuery({ query: ISSUES, variables: listVariables });
    // The list stays watched, as a mounted view's would, until the end.
    const loaded = new Promise((resolve, reject) => {
      listWatch = list.subscribe({ next: resolve, error: reject });
    });
    let page = (await loaded).data.issues;
    assert.equal(page.totalCount, 5);
    assert.equal(page.edges.length, 2);
    let pages = 1;
    while (page.pageInfo.hasNextPage) {
      const more = await list.fetchMore({ variables: { after: page.pageInfo.endCursor } });
      assert.ok(more.data.issues.edges.length <= 2);
      page = list.getCurrentResult().data.issues;
      pages += 1;
    }
    assert.equal(pages, 3);
    assert.equal(page.edges.length, 5, 'the pages were merged into one list');
    assert.deepEqual(page.edges.map((edge) => edge.node.id), [...created].reverse(), 'newest first');
    assert.equal(new Set(page.edges.map((edge) => edge.cursor)).size, 5);
  });

  it('updates an issue as its creator, and the cached list shows it without a refetch', async () => {
    const [id] = created;
    const requestsBefore = ada.requests.length;
    const { data } = await ada.client.mutate({
      mutation: UPDATE_ISSUE,
      variables: { input: { id, title: 'Login page takes 3 s', status: 'IN_PROGRESS' } },
    });
    assert.equal(data.updateIssue.issue.title, 'Login page takes 3 s');
    assert.equal(data.updateIssue.issue.status, 'IN_PROGRESS');

    const edited = (issues) => issues.edges.find((edge) => edge.node.id === id).node;
    const cached = ada.client.readQuery({ query: ISSUES, variables: listVariables });
    assert.equal(cached.issues.edges.length, 5);
    assert.equal(edited(cached.issues).title, 'Login page takes 3 s');
    assert.equal(edited(cached.issues).status, 'IN_PROGRESS');
    const cacheOnly = await ada.client.query({ query: ISSUES, variables: listVariables, fetchPolicy: 'cache-only' });
    assert.equal(edited(cacheOnly.data.issues).title, 'Login page takes 3 s');
    assert.equal(edited(list.getCurrentResult().data.issues).title, 'Login page takes 3 s', 'the watched list');
    assert.deepEqual(ada.requests.slice(requestsBefore), ['UpdateIssue'], 'only the mutation went out');
  });

  it("refuses the other person's update with FORBIDDEN", async () => {
    const update = bob.client.mutate({ mutation: UPDATE_ISSUE, variables: { input: { id: created[0], title: 'Mine now' } } });
    await assert.rejects(update, (error) => {
      assert.equal(errorCode(error), 'FORBIDDEN');
      return true;
    });
    const cached = ada.client.readQuery({ query: ISSUES, variables: listVariables });
    assert.equal(cached.issues.edges.find((edge) => edge.node.id === created[0]).node.title, 'Login page takes 3 s');
  });

  it('renews the session with the refresh token', async () => {
    const input = { refreshToken: ada.session.refreshToken };
    const { data } = await ada.client.mutate({ mutation: REFRESH, variables: { input } });
    assert.notEqual(data.refreshToken.refreshToken, ada.session.refreshToken);
    assert.equal(data.refreshToken.user.id, ada.session.user.id);
    ada.signIn(data.refreshToken);
    const me = await ada.client.query({ query: ME, fetchPolicy: 'network-only' });
    assert.equal(me.data.me.id, ada.session.user.id);
  });

  it('logs out, after which the refresh token is refused', async () => {
    const input = { refreshToken: ada.session.refreshToken };
    const { data } = await ada.client.mutate({ mutation: LOGOUT, variables: { input } });
    assert.equal(data.logout.success, true);
    await assert.rejects(ada.client.mutate({ mutation: REFRESH, variables: { input } }), (error) => {
      assert.equal(errorCode(error), 'UNAUTHENTICATED');
      return true;
    });
    await ada.client.clearStore();
    ada.signIn({ accessToken: null, refreshToken: null, user: null });
  });
});
