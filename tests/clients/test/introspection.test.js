// The introspection query of graphql-js, as GraphiQL, Apollo Sandbox, graphql-codegen,
// Postman and Insomnia send it, with every option graphql-js 16 has: the server must
// answer it at its default settings, with a schema graphql-js can rebuild.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildClientSchema, getIntrospectionQuery, printSchema } from 'graphql';

import { graphqlUrl } from './helpers.js';

test('the standard introspection query of graphql-js loads the whole schema', async () => {
  const query = getIntrospectionQuery({
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
  });
  const response = await fetch(graphqlUrl(), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, operationName: 'IntrospectionQuery' }),
  });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  const schema = buildClientSchema(body.data);
  const sdl = printSchema(schema);
  for (const name of ['Issue', 'User', 'IssueConnection', 'RateLimit']) {
    assert.ok(schema.getType(name), `${name} is in the schema`);
  }
  assert.match(sdl, /rateLimit: RateLimit/);
});
