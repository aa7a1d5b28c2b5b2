import { sbErrors } from './errors.js';

/** Milliseconds of an ISO 8601 duration as Service Bus writes them ('PT1M', 'P14D', 'PT0.5S'); Infinity for TimeSpan.MaxValue. */
export function durationMs(iso: string, field = 'duration'): number {
  const m = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(iso);
  if (!m || iso === 'P' || iso.endsWith('T')) throw sbErrors.argument(`'${field}' must be an ISO 8601 duration such as 'PT1M', not '${iso}'.`);
  const [, d, h, min, s] = m;
  const ms = (Number(d ?? 0) * 86400 + Number(h ?? 0) * 3600 + Number(min ?? 0) * 60 + Number(s ?? 0)) * 1000;
  // Anything from 10675199 days up is .NET's TimeSpan.MaxValue: never.
  return Number(d ?? 0) >= 10675199 ? Infinity : Math.round(ms);
}
