// The module `latchkey-conformance` runs: its default export builds a fresh, isolated backend
// for every check. npx latchkey-conformance examples/backend/conformance.ts
import { MapBackend } from './map-backend.js';

export default function create(): MapBackend {
  return new MapBackend();
}
