// The router models a simulated fleet is made of: vendors, product classes, data models and
// their released software versions. Invented names; the OUIs are locally administered (second
// hex digit 2, 6, A or E) so they never name a real vendor. Product classes are letters and
// digits only, so device ids need no escaping (cwmp/device-id.ts) and read well in URLs.
import type { DataModelKind } from '../../test/support/cpe';

export interface RouterModel {
  manufacturer: string;
  oui: string;
  productClass: string;
  /** DeviceInfo.ModelName. */
  modelName: string;
  dataModel: DataModelKind;
  hardwareVersion: string;
  /** Released software versions, oldest first; the last is current. */
  firmware: readonly string[];
  /** A mobile (LTE/5G) WAN: the Cellular object and mobile usage counters (TR-181 only). */
  cellular?: 'LTE' | 'NR';
  /** A pocket router on battery (vendor extension). */
  battery?: boolean;
  /** Share of the fleet (relative). */
  weight: number;
}

export const MODELS: readonly RouterModel[] = [
  { manufacturer: 'Nordlink', oui: 'A2F1E8', productClass: 'NLAX3000', modelName: 'Nordlink AX3000 Home Gateway', dataModel: 'tr181', hardwareVersion: 'B2', firmware: ['3.0.4', '3.1.2', '3.2.0'], weight: 25 },
  { manufacturer: 'Nordlink', oui: 'A2F1E8', productClass: 'NLLTE500', modelName: 'Nordlink LTE500 Outdoor CPE', dataModel: 'tr181', hardwareVersion: 'A1', firmware: ['1.8.0', '1.9.3', '2.0.1'], cellular: 'LTE', weight: 15 },
  { manufacturer: 'Kestrel Networks', oui: '36C9D2', productClass: 'KXMiFi5', modelName: 'Kestrel MiFi 5G Pocket', dataModel: 'tr181', hardwareVersion: 'R3', firmware: ['5.0.2', '5.1.0'], cellular: 'NR', battery: true, weight: 10 },
  { manufacturer: 'Helios', oui: '0E259E', productClass: 'HG2400', modelName: 'Helios HG2400 VDSL2 Router', dataModel: 'tr098', hardwareVersion: 'V2.0', firmware: ['4.0.3', '4.1.0', '4.2.2'], weight: 25 },
  { manufacturer: 'Helios', oui: '0E259E', productClass: 'HG1800', modelName: 'Helios HG1800 ADSL2+ Router', dataModel: 'tr098', hardwareVersion: 'V1.2', firmware: ['2.7.1', '2.8.0'], weight: 15 },
  { manufacturer: 'Baltic Telecom Equipment', oui: '7A2E0D', productClass: 'BTEONT10', modelName: 'BTE ONT10 Fibre Router', dataModel: 'tr098', hardwareVersion: '1.0', firmware: ['7.2.0', '7.3.1'], weight: 10 },
];

export const currentFirmware = (m: RouterModel): string => m.firmware[m.firmware.length - 1];

/** The image an operator uploads to bring a model to its current version (the simulated routers read the version from the name). */
export const firmwareFileOf = (m: RouterModel): string => `${m.productClass}-${currentFirmware(m)}.bin`;
