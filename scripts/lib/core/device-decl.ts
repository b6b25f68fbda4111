// The shape of one device a suite declares (vm/devices.ts parses and plans it).
/** One QEMU device of a suite, as its -device spec (vm/devices.ts). */
export interface DeviceDecl {
  /** As the suite wrote it. */
  spec: string;
  driver: string;
  id: string;
  /** The properties after the driver, id among them, in order. */
  props: [string, string][];
  /** Where the suite wrote it, for errors. */
  where?: { file: string; line?: number; field: string };
}
