export { KeyvLatchkey, type KeyvLatchkeyEntry, type KeyvLatchkeyOpts } from './keyv-latchkey.js';
