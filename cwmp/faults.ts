// CWMP fault codes (TR-069 Annex A, fault code tables) and SOAP Fault construction.
//
// Messages follow the fault-code documentation in the Broadband Forum schemas
// (cwmp-1-2.xsd CPEFaultCodeType / ACSFaultCodeType; cwmp-1-4.xsd adds 8006).
//
// SOAP faultcode "Client" vs "Server": TR-069's fault tables give each code a type. The CPE
// codes 9000-9020 below match the tables of two open-source CPE agents (iopsys icwmp
// FAULT_CPE_ARRAY and cwmp_tr069v1.2 faultCode.c): only the "the request's arguments are bad"
// family is Client (9003, 9005-9008). icwmp also marks 9026-9032 Server. Not confirmed against
// the specification text (so chosen by analogy, flagged "(?)"): the ACS codes (8003 Client like
// 9003, the rest Server like their 9xxx twins), 8006, and 9021-9025.

import type { SetParameterValuesFaultStruct, SoapFault } from './types';

export const FAULT_MESSAGES: Readonly<Record<number, string>> = Object.freeze({
  // ACS fault codes (sent by the ACS to the CPE)
  8000: 'Method not supported',
  8001: 'Request denied (no reason specified)',
  8002: 'Internal error',
  8003: 'Invalid arguments',
  8004: 'Resources exceeded',
  8005: 'Retry request',
  8006: 'ACS version incompatible with CPE',
  // CPE fault codes (sent by the CPE to the ACS)
  9000: 'Method not supported',
  9001: 'Request denied (no reason specified)',
  9002: 'Internal error',
  9003: 'Invalid arguments',
  9004: 'Resources exceeded',
  9005: 'Invalid parameter name',
  9006: 'Invalid parameter type',
  9007: 'Invalid parameter value',
  9008: 'Attempt to set a non-writable parameter',
  9009: 'Notification request rejected',
  9010: 'File transfer failure',
  9011: 'Upload failure',
  9012: 'File transfer server authentication failure',
  9013: 'Unsupported protocol for file transfer',
  9014: 'File transfer failure: unable to join multicast group',
  9015: 'File transfer failure: unable to contact file server',
  9016: 'File transfer failure: unable to access file',
  9017: 'File transfer failure: unable to complete download',
  9018: 'File transfer failure: file corrupted',
  9019: 'File transfer failure: file authentication failure',
  9020: 'File transfer failure: unable to complete download within specified time windows',
  9021: 'Cancelation of file transfer not permitted in current transfer state',
  9022: 'Invalid UUID format',
  9023: 'Unknown Execution Environment',
  9024: 'Disabled Execution Environment',
  9025: 'Deployment Unit to Execution Environment mismatch',
  9026: 'Duplicate Deployment Unit',
  9027: 'System resources exceeded',
  9028: 'Unknown Deployment Unit',
  9029: 'Invalid Deployment Unit state',
  9030: 'Invalid Deployment Unit update: downgrade not permitted',
  9031: 'Invalid Deployment Unit update: version not specified',
  9032: 'Invalid Deployment Unit update: version already exists',
  // 9800-9899: CPE vendor-specific faults; 8800-8899: ACS vendor-specific faults (no fixed text).
});

/** Codes whose SOAP faultcode is "Client" (the sender's request was at fault); all others are "Server". */
const CLIENT_FAULTS: ReadonlySet<number> = new Set([
  8003, // Invalid arguments (?) by analogy with 9003
  9003, // Invalid arguments
  9005, // Invalid parameter name
  9006, // Invalid parameter type
  9007, // Invalid parameter value
  9008, // Attempt to set a non-writable parameter
  9021, // Cancelation not permitted in current transfer state (?)
  9022, // Invalid UUID format (?): a malformed argument
]);

/** True for the vendor ranges 8800-8899 (ACS) and 9800-9899 (CPE). */
export function isVendorFault(code: number): boolean {
  return (code >= 9800 && code <= 9899) || (code >= 8800 && code <= 8899);
}

/** The standard text for a CWMP fault code; "Vendor fault" for the vendor ranges, "Unknown fault" otherwise. */
export function faultMessage(code: number): string {
  const m = Object.prototype.hasOwnProperty.call(FAULT_MESSAGES, code) ? FAULT_MESSAGES[code] : undefined;
  if (m !== undefined) return m;
  return isVendorFault(code) ? 'Vendor fault' : 'Unknown fault';
}

/** The SOAP faultcode TR-069 assigns to a CWMP fault code ("Server" for vendor and unknown codes). */
export function faultType(code: number): 'Client' | 'Server' {
  return CLIENT_FAULTS.has(code) ? 'Client' : 'Server';
}

/**
 * A SOAP Fault message carrying a CWMP fault: faultcode per faultType(), faultstring "CWMP fault",
 * FaultString defaulting to the standard message. spvFaults is for 9003 answers to SetParameterValues.
 */
export function makeFault(
  code: number,
  message?: string,
  spvFaults?: SetParameterValuesFaultStruct[],
): SoapFault {
  return {
    method: 'Fault',
    faultCode: faultType(code),
    faultString: 'CWMP fault',
    code,
    message: message ?? faultMessage(code),
    setParameterValuesFaults: spvFaults ?? [],
  };
}
