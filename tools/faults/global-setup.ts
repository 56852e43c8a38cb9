// The shared servers of the fault suite (destructive scenarios start dedicated ones of their own).
import { createGlobalSetup } from '@latchkey/test-servers';

export default createGlobalSetup(['redis', 'memcached', 'mongo', 'postgres']);
