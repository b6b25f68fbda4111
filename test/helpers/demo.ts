// The netlink demo's app and transcript as --app-dir/--transcript flags: the
// e2e tests that run a copy of the module (a broken edit, a replay) with them.
import path from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
export const demoAppAndTranscript = ['--app-dir', path.join(root, 'userapp'), '--transcript', path.join(root, 'test/expected/netlink.transcript')];
