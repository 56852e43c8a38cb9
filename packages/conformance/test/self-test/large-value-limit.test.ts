/**
 * A backend declaring a 512 MiB `maxValueBytes` (a default RedisBackend) passes the value-size
 * checks: they build no string of the limit's size (V8 cannot) and write at most 16 MiB.
 */
import { describeBackendConformance } from '../../src/index.js';
import create, { conformanceOptions } from '../fixtures/large-limit-memory-backend.js';

describeBackendConformance('a backend with a 512 MiB maxValueBytes', { ...conformanceOptions, create });
