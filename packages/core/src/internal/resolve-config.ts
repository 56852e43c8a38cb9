import { CallRunner } from '../backend-kit/call-runner.js';
import { hasDataMethod, hasOwnLocks, type Backend } from '../backend.js';
import { taggedCodec, type Codec } from '../codec.js';
import { LatchkeyError, ValidationError } from '../errors.js';
import { sha1KeyMangler, type KeyMangler } from '../key-mangler.js';
import type { ConfigureOptions, ProxyBackendClass } from '../key-value-store-options.js';
import { ProxyBackend } from '../proxy-backend.js';
import {
  DEFAULT_LOCK_SAFETY_WINDOW_MS,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_LOCK_WAIT_MS,
  DEFAULT_OPERATION_TIMEOUT_MS,
  leaseLengthMs,
  type ResolvedConfig,
} from './config.js';
import { LocalLocksBackend } from './local-locks-backend.js';
import { resolveBackendFactory } from './registry-state.js';
import { describe, optionalBoolean, optionalDuration, optionalObject } from './validate.js';

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'keyMangler',
  'proxies',
  'locking',
  'lockTimeoutMs',
  'lockSafetyWindowMs',
  'lockWaitMs',
  'ttlMs',
  'codec',
  'operationTimeoutMs',
  'backendOptions',
  'traceKeys',
] satisfies (keyof ConfigureOptions)[]);

/**
 * Validates `configure`'s arguments and builds the store's configuration: every option is
 * checked before a named backend is built, a backend without locks of its own gets the core's
 * lock table, and the proxies are chained over it.
 *
 * On failure nothing is left behind (a backend built from a registered factory is closed
 * again) and the error is a {@link LatchkeyError}: latchkey errors unchanged, anything else
 * as the `cause` of a {@link ValidationError}.
 */
export async function resolveConfig(storeName: string, backingStore: unknown, value: unknown): Promise<ResolvedConfig> {
  let built: Backend | undefined;
  try {
    const options = checkOptionNames(value);
    const keyMangler = checkKeyMangler(options.keyMangler);
    const lockSafetyWindowMs = optionalDuration('lockSafetyWindowMs', options.lockSafetyWindowMs) ?? DEFAULT_LOCK_SAFETY_WINDOW_MS;
    const settings = {
      locking: optionalBoolean('locking', options.locking) ?? true,
      lockTimeoutMs: leaseLengthMs(options.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS, lockSafetyWindowMs),
      lockSafetyWindowMs,
      lockWaitMs: optionalDuration('lockWaitMs', options.lockWaitMs) ?? DEFAULT_LOCK_WAIT_MS,
      ttlMs: optionalDuration('ttlMs', options.ttlMs, { positive: true }),
      codec: checkCodec(options.codec),
      operationTimeoutMs:
        optionalDuration('operationTimeoutMs', options.operationTimeoutMs, { positive: true, allowInfinity: true }) ??
        DEFAULT_OPERATION_TIMEOUT_MS,
      traceKeys: optionalBoolean('traceKeys', options.traceKeys) ?? false,
    };
    const backendOptions = (optionalObject('backendOptions', options.backendOptions) as Record<string, unknown> | undefined) ?? {};
    const proxies = resolveProxies(options.proxies);

    const backend = typeof backingStore === 'string' ? (built = await buildNamedBackend(backingStore, backendOptions)) : backingStore;
    assertBackend(backend);
    const base = hasOwnLocks(backend) ? backend : new LocalLocksBackend(backend);
    let chain: Backend = base;
    for (const proxy of [...proxies].reverse()) chain = proxy.wrap(chain);
    const mangler = keyMangler === undefined ? (backend.keyMangler ?? sha1KeyMangler) : keyMangler;
    // Size limits and expiry granularity are the storage's own (beneath the proxies).
    const { maxKeyBytes, maxValueBytes, ttlResolutionMs } = base.capabilities;
    return Object.freeze({
      chain,
      mangle: mangler === null ? (key: string) => key : mangler,
      keysAsGiven: mangler === null,
      dataMethods: Object.freeze({
        clear: hasDataMethod(backend, 'clear'),
        keys: hasDataMethod(backend, 'keys'),
        has: hasDataMethod(backend, 'has'),
        compareAndSet: hasDataMethod(backend, 'compareAndSet'),
      }),
      ...settings,
      maxKeyBytes,
      maxValueBytes,
      ttlResolutionMs,
      backendName: backendNameOf(backend),
      calls: new CallRunner({ name: `KeyValueStore "${storeName}"`, timeoutMs: settings.operationTimeoutMs }),
    });
  } catch (error) {
    if (built !== undefined) await built.close().catch(() => undefined);
    if (error instanceof LatchkeyError) throw error;
    throw new ValidationError(
      `Could not configure KeyValueStore "${storeName}": ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

function backendNameOf(backend: Backend): string {
  const name: unknown = (backend as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name.length > 0 ? name : 'Object';
}

function checkOptionNames(value: unknown): ConfigureOptions {
  const options = (optionalObject('configure options', value) ?? {}) as ConfigureOptions;
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) throw new ValidationError(`Unknown configure option "${name}".`);
  }
  return options;
}

function checkKeyMangler(keyMangler: unknown): KeyMangler | null | undefined {
  if (keyMangler !== undefined && keyMangler !== null && typeof keyMangler !== 'function') {
    throw new ValidationError(`keyMangler must be a function, null or undefined, got ${describe(keyMangler)}.`);
  }
  return keyMangler as KeyMangler | null | undefined;
}

function checkCodec(value: unknown): Codec {
  const codec = (value ?? taggedCodec) as Codec;
  if (typeof codec !== 'object' || codec === null || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new ValidationError('codec must be an object with encode and decode functions.');
  }
  return codec;
}

function resolveProxies(proxies: unknown): ProxyBackend[] {
  if (proxies === undefined) return [];
  if (!Array.isArray(proxies)) throw new ValidationError(`proxies must be an array, got ${describe(proxies)}.`);
  const instances = proxies.map((proxy: unknown, index) => {
    if (proxy instanceof ProxyBackend) return proxy;
    if (typeof proxy === 'function' && proxy.prototype instanceof ProxyBackend) {
      return new (proxy as ProxyBackendClass)();
    }
    throw new ValidationError(`proxies[${index}] must be a ProxyBackend subclass or instance, got ${describe(proxy)}.`);
  });
  if (new Set(instances).size !== instances.length) throw new ValidationError('proxies must not list the same instance twice.');
  return instances;
}

async function buildNamedBackend(name: string, options: Record<string, unknown>): Promise<Backend> {
  const factory = resolveBackendFactory(name);
  if (factory === undefined) throw new ValidationError(`Unknown backend "${name}"; register it with registerBackend() first.`);
  return factory(options);
}

function assertBackend(backend: unknown): asserts backend is Backend {
  const required = ['get', 'getMany', 'set', 'setMany', 'delete', 'deleteMany', 'close'] as const;
  if (typeof backend !== 'object' || backend === null)
    throw new ValidationError(`backingStore must be a Backend or a registered name, got ${describe(backend)}.`);
  const record = backend as Record<string, unknown>;
  const missing = required.filter((method) => typeof record[method] !== 'function');
  if (missing.length > 0) throw new ValidationError(`backingStore is not a Backend: missing ${missing.join(', ')}.`);
  if (typeof record['capabilities'] !== 'object' || record['capabilities'] === null)
    throw new ValidationError('backingStore is not a Backend: missing capabilities.');
}
