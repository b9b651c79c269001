/**
 * A bus whose subscriptions take `delay` ms to come into effect (a broker
 * far away): messages on a channel reach the transport only once its
 * subscribe() has resolved, as with a real broker. Wraps any adapter.
 */
import type { Bus } from '../../src/bus/bus';

export function slowSubscriptions(bus: Bus, delay: number): Bus {
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
