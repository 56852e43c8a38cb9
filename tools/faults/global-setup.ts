// The shared servers of the fault suite (destructive scenarios start dedicated ones of their own).
import { createGlobalSetup } from '../test-servers/global-setup.js';

export default createGlobalSetup(['redis', 'memcached', 'mongo']);
