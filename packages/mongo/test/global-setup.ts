// Starts a throwaway MongoDB-wire server (mongod, else FerretDB) for the integration tests,
// or uses LATCHKEY_MONGODB_URL; tests read it with inject('mongoUrl').
import { createGlobalSetup } from '../../../tools/test-servers/global-setup.js';

export const setup = createGlobalSetup(['mongo']);
