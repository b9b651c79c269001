'use strict';
/**
 * A bus whose subscriptions take `delay` ms to come into effect (a broker
 * far away): messages on a channel reach the transport only once its
 * subscribe() has resolved, as with a real broker. Wraps any adapter.
 * CommonJS so that both the vitest suites and the child-process fixtures
 * (topic-fixtures/cluster-bus.js) use this one copy.
 *
 * @param {import('../../src/bus/bus').Bus} bus
 * @param {number} delay
 * @returns {import('../../src/bus/bus').Bus}
 */
function slowSubscriptions(bus, delay) {
  return {
    kind: bus.kind,
    dropDelay: bus.dropDelay,
    open(events) {
      const transport = bus.open(events);
      return {
        get up() {
          return transport.up;
        },
        subscribe: async (channel) => {
          await new Promise((resolve) => setTimeout(resolve, delay));
          await transport.subscribe(channel);
        },
        unsubscribe: (channel) => transport.unsubscribe(channel),
        publish: (channel, payload) => transport.publish(channel, payload),
        close: () => transport.close(),
      };
    },
  };
}

module.exports = { slowSubscriptions };
