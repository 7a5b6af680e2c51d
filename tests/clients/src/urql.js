// urql set up for Triage: queries and mutations over HTTP, subscriptions over
// WebSocket with graphql-ws (the `graphql-transport-ws` protocol), as a browser app
// would, and as the tests use it.
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient } from 'graphql-ws';

/**
 * A client for the API at `url` (`https://triage.example.com/graphql`); subscriptions
 * go to `${url}/ws` (`wss://` for `https://`).
 *
 * `getToken()` returns the current access token; the WebSocket sends it once, in
 * `connection_init`, and a connection with a missing or bad token is closed with
 * code 4403. Browsers have a `WebSocket`; Node 20 needs one passed as
 * `webSocketImpl` (the `ws` package). Other graphql-ws options go in `ws`.
 */
export function createUrqlClient({ url, getToken = () => null, webSocketImpl, ws = {} }) {
  const wsClient = createWsClient({
    url: `${url.replace(/^http/, 'ws')}/ws`,
    // A function, so each (re)connection presents the token current at the time.
    connectionParams: () => {
      const token = getToken();
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    webSocketImpl,
    ...ws,
  });

  const client = new Client({
    url,
    fetchOptions: () => {
      const token = getToken();
      return token ? { headers: { authorization: `Bearer ${token}` } } : {};
    },
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return {
            subscribe(sink) {
              return { unsubscribe: wsClient.subscribe(input, sink) };
            },
          };
        },
      }),
    ],
  });

  return { client, wsClient };
}
