import { MemoryBackend } from '@latchkey/memory';
import { describeBackendConformance } from '../../src/index.js';

describeBackendConformance('MemoryBackend', { create: () => new MemoryBackend() });
