/**
 * This device's key packages (CONTRACT.md section 10): generated here, their private parts
 * kept in the SDK storage (JSON: every key base64url), the public parts uploaded to the
 * directory. A welcome names the key package it was made for by its KeyPackageRef, which
 * is what they are stored by. Ordinary packages are used once and then forgotten; the
 * last-resort one stays until it is replaced.
 */
import {
  keyPackageRef,
  loadKeyPackage,
  newKeyPackage,
  storeKeyPackage,
  type DeviceKeyPackage,
  type DeviceRef,
  type StoredKeyPackage,
} from "../../../mls/adapter";
import type { ChatStorage } from "../storage";

export const MLS_KEYS_KEY = "mls.keys";

/** How many ordinary key packages a device keeps uploaded (the server warns below 10). */
export const KEY_PACKAGE_TARGET = 20;

export interface KeyStoreSnapshot {
  user_id: string;
  device_id: string;
  /** Every private key package not yet used, by KeyPackageRef. */
  packages: Record<string, StoredKeyPackage>;
  last_resort: string | null;
  /** Refs generated but not yet acknowledged by the directory. */
  unsent: string[];
  /** Whether `unsent`'s last-resort package is among them. */
  unsent_last_resort: boolean;
}

export type Request = <T>(method: string, path: string, body?: unknown, query?: Record<string, string | number | undefined>) => Promise<T>;

export class KeyStore {
  private constructor(
    private readonly storage: ChatStorage,
    private snap: KeyStoreSnapshot,
  ) {}

  static async load(storage: ChatStorage, device: DeviceRef): Promise<KeyStore> {
    const stored = await storage.read<KeyStoreSnapshot>(MLS_KEYS_KEY);
    const fresh: KeyStoreSnapshot = { user_id: device.userId, device_id: device.deviceId, packages: {}, last_resort: null, unsent: [], unsent_last_resort: false };
    const mine = stored && stored.user_id === device.userId && stored.device_id === device.deviceId;
    return new KeyStore(storage, mine ? stored : fresh);
  }

  /** The storage entry of the current state (for a write together with other keys). */
  entry(): Record<string, unknown> {
    return { [MLS_KEYS_KEY]: this.snap };
  }

  private save(): Promise<void> {
    return this.storage.write(this.entry());
  }

  get hasLastResort(): boolean {
    return this.snap.last_resort !== null;
  }

  /**
   * Generates `count` ordinary packages (and a last-resort one if there is none), stores
   * their private parts, then uploads what has not been acknowledged yet.
   */
  async replenish(device: DeviceRef, count: number, request: Request): Promise<number> {
    const made: DeviceKeyPackage[] = [];
    for (let i = 0; i < count; i++) made.push(await newKeyPackage(device));
    for (const kp of made) {
      const ref = await keyPackageRef(kp.publicPackage);
      this.snap.packages[ref] = storeKeyPackage(kp);
      this.snap.unsent.push(ref);
    }
    if (!this.snap.last_resort) {
      const kp = await newKeyPackage(device);
      const ref = await keyPackageRef(kp.publicPackage);
      this.snap.packages[ref] = storeKeyPackage(kp);
      this.snap.last_resort = ref;
      this.snap.unsent_last_resort = true;
    }
    await this.save();
    return this.upload(request);
  }

  /** Uploads the packages not yet acknowledged; resolves with how many the directory stored. */
  async upload(request: Request): Promise<number> {
    const refs = this.snap.unsent.filter((r) => this.snap.packages[r]);
    const lastResort = this.snap.unsent_last_resort && this.snap.last_resort ? this.snap.packages[this.snap.last_resort] : undefined;
    if (refs.length === 0 && !lastResort) return 0;
    const body = { key_packages: refs.map((r) => this.snap.packages[r]!.encoded), ...(lastResort ? { last_resort: lastResort.encoded } : {}) };
    const answer = await request<{ stored: number }>("POST", "/v1/mls/key-packages", body);
    this.snap.unsent = this.snap.unsent.filter((r) => !refs.includes(r));
    if (lastResort) this.snap.unsent_last_resort = false;
    await this.save();
    return answer.stored;
  }

  /** The private key package a welcome was made for, if this device holds it. */
  find(refs: string[]): { ref: string; keyPackage: DeviceKeyPackage } | null {
    for (const ref of refs) {
      const stored = this.snap.packages[ref];
      if (stored) return { ref, keyPackage: loadKeyPackage(stored) };
    }
    return null;
  }

  /** Forgets a used ordinary package (the last-resort one is kept); the caller stores `entry()`. */
  used(ref: string): void {
    if (ref !== this.snap.last_resort) delete this.snap.packages[ref];
  }
}
