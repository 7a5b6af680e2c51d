// Apollo Client set up for Triage as a browser app would, and as the tests use it.
//
// `@apollo/client/core` is Apollo without its React hooks; the explicit `index.js`
// is what Node's ES module resolver needs, and bundlers accept it as well.
import {
  ApolloClient,
  ApolloLink,
  HttpLink,
  InMemoryCache,
} from '@apollo/client/core/index.js';
import { relayStylePagination } from '@apollo/client/utilities/index.js';

/**
 * A client for the API at `uri` (`https://triage.example.com/graphql`).
 *
 * `getToken()` returns the current access token, or nothing when logged out; it is
 * read for every request, so a refreshed token is used as soon as it is stored.
 * `fetch` defaults to the global one.
 */
export function createApolloClient({ uri, getToken = () => null, fetch = globalThis.fetch }) {
  const auth = new ApolloLink((operation, forward) => {
    const token = getToken();
    if (token) {
      operation.setContext(({ headers = {} }) => ({
        headers: { ...headers, authorization: `Bearer ${token}` },
      }));
    }
    return forward(operation);
  });

  const cache = new InMemoryCache({
    typePolicies: {
      Query: {
        fields: {
          // One list per filter and order; `fetchMore({ variables: { after } })`
          // appends the next page to it.
          issues: relayStylePagination(['filter', 'orderBy']),
        },
      },
    },
  });

  return new ApolloClient({ link: auth.concat(new HttpLink({ uri, fetch })), cache });
}
