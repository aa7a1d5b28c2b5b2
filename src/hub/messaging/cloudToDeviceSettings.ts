import { durationSeconds } from '../files/settings.js';

/**
 * A hub's cloud-to-device settings, in the shape of the ARM resource's `properties.cloudToDevice`:
 * the device queues' default time to live and maximum delivery count, and the feedback queue's
 * retention (ttl), lock duration and maximum delivery count.
 */
export interface CloudToDeviceSettings {
  maxDeliveryCount: number;
  defaultTtlAsIso8601: string;
  feedback: { lockDurationAsIso8601: string; ttlAsIso8601: string; maxDeliveryCount: number };
}

/** IoT Hub's defaults: messages live an hour and are delivered up to 10 times; feedback is kept an hour, locked a minute, delivered up to 10 times. */
export const defaultCloudToDeviceSettings = (): CloudToDeviceSettings => ({
  maxDeliveryCount: 10,
  defaultTtlAsIso8601: 'PT1H',
  feedback: { lockDurationAsIso8601: 'PT1M', ttlAsIso8601: 'PT1H', maxDeliveryCount: 10 },
});

/** The settings as the hub acts on them (durations in milliseconds, read once when set). */
export interface CloudToDeviceLimits {
  defaultTtlMs: number;
  maxDeliveryCount: number;
  feedback: { ttlMs: number; lockMs: number; maxDeliveryCount: number };
}

function limitsOf(s: CloudToDeviceSettings): CloudToDeviceLimits {
  return {
    defaultTtlMs: durationSeconds(s.defaultTtlAsIso8601) * 1000,
    maxDeliveryCount: s.maxDeliveryCount,
    feedback: {
      ttlMs: durationSeconds(s.feedback.ttlAsIso8601) * 1000,
      lockMs: durationSeconds(s.feedback.lockDurationAsIso8601) * 1000,
      maxDeliveryCount: s.feedback.maxDeliveryCount,
    },
  };
}

/**
 * Where the hub reads its cloud-to-device settings; the control plane (the hub resource's
 * `properties.cloudToDevice`, validated there) is their one writer.
 */
export class HeldCloudToDeviceSettings {
  private limits: CloudToDeviceLimits;
  constructor(initial: CloudToDeviceSettings = defaultCloudToDeviceSettings()) {
    this.limits = limitsOf(initial);
  }
  current(): CloudToDeviceLimits {
    return this.limits;
  }
  set(settings: CloudToDeviceSettings): void {
    this.limits = limitsOf(settings);
  }
}
