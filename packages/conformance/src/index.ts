export {
  CONFORMANCE_GROUPS,
  type ConformanceGroup,
  type ConformanceOptions,
  type FaultOptions,
  type ServerAddress,
} from './conformance-options.js';
export {
  describeBackendConformance,
  describeBadInputConformance,
  describeDataConformance,
  describeFaultConformance,
  describeLockConformance,
  describeStoreConformance,
  describeStoreLockConformance,
  describeTtlConformance,
} from './describe-conformance.js';
export { RecordingProxy, type RecordedCall } from './recording-proxy.js';
export { TcpFaultProxy, type FaultProxyMode, type FaultProxyStats, type ProxyTarget } from './tcp-fault-proxy.js';
