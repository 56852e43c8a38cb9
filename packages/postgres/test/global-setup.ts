import { createGlobalSetup } from '@latchkey/test-servers';

export default createGlobalSetup(['postgres']);
