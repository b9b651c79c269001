/**
 * docs/reliability.md T50, second half (see engine.native.tiny.test.ts): the
 * lifecycle, input, back-pressure and ordering suites on the native engines
 * with every native bound at its minimum.
 */
import '../../helpers/tiny-bounds';
import '../../server/server.lifecycle.test';
import '../../reliability/reliability.input.test';
import '../../reliability/reliability.backpressure.test';
import '../../reliability/reliability.ordering.test';
