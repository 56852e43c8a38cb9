import { describeConformanceOn, describeFaultConformanceOn } from '../support/conformance.js';
import { targets } from '../support/targets.js';

// One file per target so vitest runs the two (mostly waiting) suites side by side.
const [oneServer] = targets('MemcachedBackend conformance', 'one server');
describeConformanceOn(oneServer);
describeFaultConformanceOn(oneServer);
