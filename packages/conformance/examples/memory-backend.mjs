// A backend module for `latchkey-conformance`: its default export builds a fresh, isolated
// backend for every check. Run: npx latchkey-conformance examples/memory-backend.mjs
import { MemoryBackend } from '@latchkey/memory';

export default function create() {
  return new MemoryBackend();
}
