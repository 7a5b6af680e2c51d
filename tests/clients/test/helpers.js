// What the tests share: where the servers are, and fresh names.
//
// `run` starts the servers and sets TRIAGE_URL (the first replica's base URL) and,
// with PostgreSQL, TRIAGE_SECOND_URL (another replica on the same database).
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

function baseUrl(name) {
  const url = process.env[name];
  return url ? url.replace(/\/+$/, '') : undefined;
}

/** The GraphQL endpoint of the server under test. */
export function graphqlUrl() {
  const base = baseUrl('TRIAGE_URL');
  if (!base) throw new Error('TRIAGE_URL is not set: run the suite with tests/clients/run');
  return `${base}/graphql`;
}

/** The GraphQL endpoint of a second replica, or of the same server when there is none. */
export function secondGraphqlUrl() {
  const base = baseUrl('TRIAGE_SECOND_URL');
  return base ? `${base}/graphql` : graphqlUrl();
}

/** `name` with a random suffix, so reruns against one database do not collide. */
export function unique(name) {
  return `${name}_${randomBytes(4).toString('hex')}`;
}

export const PASSWORD = 'correct horse battery';

/** A person to register: `register(input: $input)` takes this as its input. */
export function person(name) {
  const username = unique(name);
  return {
    email: `${username}@example.com`,
    username,
    password: PASSWORD,
    firstName: name,
    lastName: 'Tester',
  };
}

/** The first GraphQL error code of an Apollo or urql error, or of a result's errors. */
export function errorCode(error) {
  const errors = error?.graphQLErrors ?? error?.errors ?? [];
  return errors[0]?.extensions?.code;
}

/**
 * A path in the suite's output directory (screenshots): TRIAGE_CLIENTS_OUTPUT, which
 * `run` sets, else tests/clients/output.
 */
export function outputPath(name = '') {
  const dir = process.env.TRIAGE_CLIENTS_OUTPUT || fileURLToPath(new URL('../output/', import.meta.url));
  return `${dir.replace(/\/+$/, '')}/${name}`;
}
