/**
 * docs/reliability.md T50 / issue 11 item 5: the native conformance suites a second
 * time, with every native bound at its minimum, so that every pause (read
 * credit, read budget, full batch ring, full inbox) happens all the time. The
 * results must be the same as with the defaults. The suites are the files
 * themselves, imported after the switch is set (import order is evaluation
 * order); engineCases() then lists only the native engines. The black-box
 * reliability suites run the same way in engine.native.tiny-reliability.test.ts
 * (two files, so that vitest runs them side by side).
 */
import '../../helpers/tiny-bounds';
import './engine.native.test';
import './engine.native.pause.test';
import '../../server/server.protocol.test';
import '../../server/server.framings.test';
import '../../proxy/proxy.server.test';
import '../../server/listen.address.test';
