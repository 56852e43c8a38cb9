import { MemoryBackend } from '@latchkey/memory';
import { describeKeyvSuite } from '../support/keyv-suites.js';

describeKeyvSuite('MemoryBackend', (store) => store.configure(new MemoryBackend()));
