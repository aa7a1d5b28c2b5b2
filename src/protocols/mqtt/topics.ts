/**
 * Topic authorization: a device touches only its own topics, `devices/{deviceId}/…` (a module:
 * `devices/{deviceId}/modules/{moduleId}/…`), and the `$iothub/…` request/response topics that the
 * hub scopes to the connection itself.
 */
export function topicBelongsTo(topic: string, deviceId: string, moduleId: string | undefined): boolean {
  if (topic.startsWith('$iothub/')) return true;
  const own = moduleId ? `devices/${deviceId}/modules/${moduleId}/` : `devices/${deviceId}/`;
  if (!topic.startsWith(own)) return false;
  // A device's own namespace does not include its modules'.
  return moduleId !== undefined || !topic.startsWith(`${own}modules/`);
}
