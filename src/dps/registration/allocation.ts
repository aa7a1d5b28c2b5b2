/**
 * Allocation: which linked hub a registering device is assigned to, by the enrollment's policy
 * (or the service's default). No sockets, no SQL.
 */
import { createHash } from 'node:crypto';
import type { DpsInstance } from '../instance.js';
import type { EnrollmentCommon, LinkedHub } from '../types.js';

/** The linked hub for this device, or why none can be chosen. */
export function allocate(instance: DpsInstance, registrationId: string, e: EnrollmentCommon): LinkedHub | string {
  const policy = e.allocationPolicy ?? instance.allocationPolicy;
  const wanted = e.iotHubs?.length ? e.iotHubs.map((h) => h.toLowerCase()) : undefined;
  const candidates = instance.linkedHubs.filter((h) =>
    wanted ? wanted.includes(h.hostName.toLowerCase()) : h.applyAllocationPolicy,
  );
  if (candidates.length === 0) return 'No linked IoT hub can be allocated for this enrollment.';
  switch (policy) {
    case 'static': {
      const host = (e.iotHubHostName ?? candidates[0]!.hostName).toLowerCase();
      return instance.linkedHubs.find((h) => h.hostName.toLowerCase() === host) ?? `Static hub ${host} is not linked.`;
    }
    case 'custom':
      return 'Custom allocation (webhook) is not supported yet.';
    case 'hashed':
    case 'geoLatency':
    default: {
      // geoLatency degrades to hashed: every hub is equally near on one machine.
      const total = candidates.reduce((s, h) => s + Math.max(0, h.allocationWeight), 0);
      if (total <= 0) return candidates[0]!;
      const point = createHash('sha256').update(registrationId).digest().readUInt32BE(0) % total;
      let acc = 0;
      for (const h of candidates) {
        acc += Math.max(0, h.allocationWeight);
        if (point < acc) return h;
      }
      return candidates[candidates.length - 1]!;
    }
  }
}
