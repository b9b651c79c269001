/**
 * `edgepoll/prometheus`: registers a server's {@link ServerStats} on a
 * prom-client `Registry` (README "Metrics"). prom-client is an optional peer
 * dependency, loaded only here and only when no registry is passed.
 *
 * Every metric is a collector object read at scrape time: one `stats()` call
 * per scrape feeds them all (the metrics of one `registry.metrics()` share it).
 * Owns: metric names, help texts, label values. Runs on: the JS thread.
 */
import type { Registry } from 'prom-client';
import type { Server, ServerStats } from './server/server';
import type { HistogramSnapshot } from './server/metrics';
import { closeReasonNames } from './server/metrics';

/** Options of {@link registerMetrics}. */
export interface PrometheusOptions {
  /** Where to register. @default prom-client's global `register` */
  registry?: Registry;
  /** Prepended to every metric name. @default 'edgepoll_' */
  prefix?: string;
  /** Labels added to every sample (e.g. `{ service: 'gateway' }`). */
  labels?: Record<string, string>;
}

/** What {@link registerMetrics} registered. */
export interface PrometheusRegistration {
  /** The metric names, prefix included. */
  readonly names: string[];
  /** Removes them from the registry. */
  unregister(): void;
}

type Labels = Record<string, string | number>;
interface Sample {
  value: number;
  labels?: Labels;
  metricName?: string;
}
type Kind = 'counter' | 'gauge' | 'histogram';

/** snake_case label values of stats().closed keys. */
const reasonLabel = (reason: string): string => reason.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The metrics: [name without prefix, type, help, samples from a stats snapshot]. */
const definitions: Array<[string, Kind, string, (s: ServerStats) => Sample[] | HistogramSnapshot]> = [
  ['connections', 'gauge', 'Open connections.', (s) => [{ value: s.connections }]],
  ['connections_accepted_total', 'counter', 'Connections accepted.', (s) => [{ value: s.accepted }]],
  [
    'connections_closed_total', 'counter', 'Connections closed, by reason (server_full: refused at accept).',
    (s) => closeReasonNames.map((reason) => ({ value: s.closed[reason], labels: { reason: reasonLabel(reason) } })),
  ],
  ['protocol_errors_total', 'counter', 'Connections closed by a protocol error, timeout, slow consumer or PROXY header failure.', (s) => [{ value: s.protocolErrors }]],
  ['messages_received_total', 'counter', 'Application messages received.', (s) => [{ value: s.messagesIn }]],
  ['messages_sent_total', 'counter', 'Application messages sent (a broadcast counts once per connection).', (s) => [{ value: s.messagesOut }]],
  ['received_bytes_total', 'counter', 'Bytes of the application messages received, framing included.', (s) => [{ value: s.bytesIn }]],
  ['sent_bytes_total', 'counter', 'Bytes of the application messages sent, framing included.', (s) => [{ value: s.bytesOut }]],
  ['handler_errors_total', 'counter', 'Handler calls that threw or rejected.', (s) => [{ value: s.handlerErrors }]],
  ['unhandled_messages_total', 'counter', 'Pushes of a type with no handler (dropped).', (s) => [{ value: s.unhandled }]],
  ['requests_in_flight', 'gauge', 'Handlers whose promise has not settled.', (s) => [{ value: s.requestsInFlight }]],
  ['handler_duration_seconds', 'histogram', 'Time from a message reaching JS to its handler settling.', (s) => s.handlerDuration],
  ['batch_wait_seconds', 'histogram', 'JS thread lag (delay of a 100 ms timer): how long handed-over batches wait for JS.', (s) => s.batchWait],
  ['loop_connections', 'gauge', 'Open connections per loop (native), process (net) or worker (cluster).', (s) => s.loops.map((l, i) => ({ value: l.connections, labels: { loop: i } }))],
  ['loop_ring_full_total', 'counter', 'Times a native loop found its batch ring to JS full.', (s) => s.loops.map((l, i) => ({ value: l.ringFull, labels: { loop: i } }))],
  ['loop_backpressure_total', 'counter', 'Times a connection of the loop went above its high-water mark.', (s) => s.loops.map((l, i) => ({ value: l.backpressure, labels: { loop: i } }))],
  ['topics', 'gauge', 'Topics with at least one local subscriber.', (s) => [{ value: s.topics ?? 0 }]],
  ['subscriptions', 'gauge', 'Connection-topic subscriptions.', (s) => [{ value: s.subscriptions ?? 0 }]],
  // The bus link's own counters (src/bus/link.ts); no samples when the server is on no bus.
  ['bus_up', 'gauge', '1 while the bus is connected.', (s) => (s.bus ? [{ value: s.bus.up ? 1 : 0 }] : [])],
  ['bus_sent_total', 'counter', 'Messages handed to the bus.', (s) => (s.bus ? [{ value: s.bus.sent }] : [])],
  ['bus_send_dropped_total', 'counter', 'Messages that could not be handed to the bus (it was down).', (s) => (s.bus ? [{ value: s.bus.sendDropped }] : [])],
  ['bus_received_total', 'counter', 'Messages received from other nodes and delivered locally.', (s) => (s.bus ? [{ value: s.bus.received }] : [])],
  ['bus_receive_dropped_total', 'counter', 'Bus messages dropped on receipt (invalid, or no subscriber any more).', (s) => (s.bus ? [{ value: s.bus.receiveDropped }] : [])],
  ['bus_gaps_total', 'counter', 'Bus outages so far.', (s) => (s.bus ? [{ value: s.bus.gaps }] : [])],
];

function histogramSamples(name: string, h: HistogramSnapshot): Sample[] {
  const samples: Sample[] = h.buckets.map((le, i) => ({ metricName: `${name}_bucket`, labels: { le }, value: h.counts[i] }));
  samples.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: h.count });
  samples.push({ metricName: `${name}_sum`, value: h.sum });
  samples.push({ metricName: `${name}_count`, value: h.count });
  return samples;
}

/**
 * Registers `server`'s metrics on a prom-client registry. Works on every
 * engine; on the cluster engine register in the primary (its stats() sums
 * the workers).
 */
export function registerMetrics(server: Pick<Server, 'stats'>, options: PrometheusOptions = {}): PrometheusRegistration {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const registry: Registry = options.registry ?? (require('prom-client') as typeof import('prom-client')).register;
  const prefix = options.prefix ?? 'edgepoll_';
  const extra = options.labels ?? {};
  let current: Promise<ServerStats> | undefined;
  // One stats() per scrape: the registry calls every metric's get() in the same tick.
  const snapshot = (): Promise<ServerStats> => {
    current ??= server.stats().finally(() => setImmediate(() => (current = undefined)));
    return current;
  };
  const names: string[] = [];
  for (const [suffix, type, help, read] of definitions) {
    const name = prefix + suffix;
    const metric = {
      name,
      help,
      type,
      aggregator: 'sum' as const,
      labelNames: [] as string[],
      async get() {
        const read_ = read(await snapshot());
        const values = Array.isArray(read_) ? read_ : histogramSamples(name, read_);
        for (const sample of values) sample.labels = { ...sample.labels, ...extra };
        return { name, help, type, aggregator: 'sum' as const, values };
      },
      reset() {},
    };
    registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
    names.push(name);
  }
  return {
    names,
    unregister() {
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}
