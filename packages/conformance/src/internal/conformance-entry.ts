/**
 * The test file the `latchkey-conformance` command hands to vitest: it imports each backend
 * module named in the run request and registers the suite for it. A module that cannot be
 * loaded, or that does not export a `create` function, becomes one failing check that says so.
 */
import type { Backend } from '@latchkey/core';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'vitest';
import type { ConformanceOptions } from '../conformance-options.js';
import { describeBackendConformance } from '../describe-conformance.js';
import { readRunRequest, type RunModule } from './run-environment.js';

const request = readRunRequest(process.env);

for (const module of request.modules) {
  const loaded = await loadOptions(module);
  if (loaded instanceof Error) {
    describe(module.label, () => {
      it('loads the backend module', () => {
        throw loaded;
      });
    });
  } else {
    describeBackendConformance(module.label, {
      ...loaded,
      ...(request.only === undefined ? {} : { only: request.only }),
      ...(request.concurrency === undefined ? {} : { concurrency: request.concurrency }),
    });
  }
}

async function loadOptions(module: RunModule): Promise<ConformanceOptions<Backend> | Error> {
  let exports: Record<string, unknown>;
  try {
    exports = (await import(/* @vite-ignore */ pathToFileURL(module.path).href)) as Record<string, unknown>;
  } catch (error) {
    return new Error(`Could not load ${module.label}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const { default: create, destroy, createPeer, conformanceOptions } = exports;
  if (typeof create !== 'function') {
    return new Error(
      `${module.label} must export a create function as its default export (it exports: ${Object.keys(exports).join(', ') || 'nothing'}).`,
    );
  }
  for (const [name, value] of [
    ['destroy', destroy],
    ['createPeer', createPeer],
  ] as const) {
    if (value !== undefined && typeof value !== 'function')
      return new Error(`${module.label}: the named export ${name} must be a function.`);
  }
  if (conformanceOptions !== undefined && (typeof conformanceOptions !== 'object' || conformanceOptions === null)) {
    return new Error(`${module.label}: the named export conformanceOptions must be an object.`);
  }
  return {
    ...(conformanceOptions as Partial<ConformanceOptions<Backend>> | undefined),
    create: create as ConformanceOptions<Backend>['create'],
    ...(destroy === undefined ? {} : { destroy: destroy as NonNullable<ConformanceOptions<Backend>['destroy']> }),
    ...(createPeer === undefined ? {} : { createPeer: createPeer as NonNullable<ConformanceOptions<Backend>['createPeer']> }),
  };
}
