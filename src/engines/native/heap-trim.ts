/**
 * Gives freed heap back to the OS once V8 has collected a burst's Buffers.
 *
 * glibc keeps memory that is freed in the middle of its heap: the Buffers a
 * burst handed to JS go back to it when V8 collects them, which may be long
 * after the loops' own trim at the end of the burst (native/loop.cc), and
 * nothing would return those pages. So while any native engine runs, one
 * process-wide check a second watches V8's external memory (where Buffers
 * are counted); when it has fallen by FREED_BYTES from its peak, one engine's
 * loop is asked to trim (the loop calls malloc_trim off the JS thread, at most
 * once a second). A GC observer would be exact, but it costs every GC
 * (+130 µs on S1's p99, measured); this costs 0.4 µs a second.
 */
import { getHeapStatistics } from 'node:v8';

interface Trimmable {
  trim(): void;
}

const CHECK_MS = 1000;
const FREED_BYTES = 8 * 1024 * 1024;
const engines = new Set<Trimmable>();
let timer: NodeJS.Timeout | undefined;
let peak = 0;

function check(): void {
  const external = getHeapStatistics().external_memory;
  if (external > peak) peak = external;
  if (peak - external < FREED_BYTES) return;
  peak = external;
  const first = engines.values().next();
  if (!first.done) first.value.trim();
}

/** While `engine` runs, freed Buffer memory is handed back to the OS; call the result when it stops. */
export function trimWhenFreed(engine: Trimmable): () => void {
  engines.add(engine);
  if (!timer) {
    peak = 0;
    timer = setInterval(check, CHECK_MS);
    timer.unref();
  }
  return () => {
    if (!engines.delete(engine) || engines.size > 0 || !timer) return;
    clearInterval(timer);
    timer = undefined;
  };
}
