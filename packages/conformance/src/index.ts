export { CONFORMANCE_GROUPS, type ConformanceGroup, type ConformanceOptions } from './conformance-options.js';
export {
  describeBackendConformance,
  describeBadInputConformance,
  describeDataConformance,
  describeLockConformance,
  describeStoreConformance,
  describeStoreLockConformance,
  describeTtlConformance,
} from './describe-conformance.js';
export { RecordingProxy, type RecordedCall } from './recording-proxy.js';
