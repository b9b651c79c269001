/**
 * Imported first by test/engines/native/engine.native.tiny.test.ts: from here on, every
 * native engine this process creates (and every fixture server it spawns,
 * which inherits the environment) runs with every native bound shrunk
 * (native/loop.h LoopBounds::tiny: batch ring of 2, 4 KiB read budget and
 * read window, 1 KiB read buffer, an inbox of 2 blocks / 16 KiB), and
 * engineCases() lists only the native engines.
 */
process.env.EDGEPOLL_DEBUG_TINY_BOUNDS = '1';
