/**
 * RELIABILITY.md T50, second half (see engine.native.tiny.test.ts): the
 * lifecycle, input, back-pressure and ordering suites on the native engines
 * with every native bound at its minimum.
 */
import './helpers/tiny-bounds';
import './server.lifecycle.test';
import './reliability.input.test';
import './reliability.backpressure.test';
import './reliability.ordering.test';
