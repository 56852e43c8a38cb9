// Starts a throwaway MongoDB-wire server (mongod, else FerretDB) for the integration tests,
// or uses LATCHKEY_MONGODB_URL; tests read it with inject('mongoUrl').
import { createGlobalSetup } from '@latchkey/test-servers';

export const setup = createGlobalSetup(['mongo']);
