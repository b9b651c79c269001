/**
 * Gives freed heap back to the OS after a garbage collection.
 *
 * glibc keeps memory that is freed in the middle of its heap: the Buffers a
 * burst handed to JS go back to it when V8 collects them, which may be long
 * after the loops' own trim at the end of the burst (native/loop.cc), and
 * nothing would return those pages. So while any native engine runs, one
 * observer of GCs asks one engine's loop to trim: at most once a second (a
 * GC inside that second is asked for at its end); the loop waits a little
 * more for V8's background freeing, then calls malloc_trim off the JS thread.
 * One observer per process, whatever the number of engines.
 */
import { PerformanceObserver } from 'node:perf_hooks';

interface Trimmable {
  trim(): void;
}

const MIN_INTERVAL_MS = 1000;
const engines = new Set<Trimmable>();
let observer: PerformanceObserver | undefined;
let lastAsked = -Infinity;
let later: NodeJS.Timeout | undefined;

function ask(): void {
  later = undefined;
  const first = engines.values().next();
  if (first.done) return;
  lastAsked = Date.now();
  first.value.trim();
}

// A GC inside the interval is not dropped (it may be the one that freed the
// burst): it is asked for when the interval is over.
function onGc(): void {
  if (later) return;
  const wait = lastAsked + MIN_INTERVAL_MS - Date.now();
  if (wait <= 0) return ask();
  later = setTimeout(ask, wait);
  later.unref();
}

/** While `engine` runs, GCs make it trim the heap; call the result when it stops. */
export function trimAfterGc(engine: Trimmable): () => void {
  engines.add(engine);
  if (!observer) {
    observer = new PerformanceObserver(onGc);
    observer.observe({ entryTypes: ['gc'] });
  }
  return () => {
    if (!engines.delete(engine) || engines.size > 0 || !observer) return;
    observer.disconnect();
    observer = undefined;
    if (later) clearTimeout(later);
    later = undefined;
  };
}
