import { describeConformanceOn } from '../support/conformance.js';
import { targets } from '../support/targets.js';

// One file per target so vitest runs the two (mostly waiting) suites side by side.
describeConformanceOn(targets('MemcachedBackend conformance', 'two servers')[0]);
