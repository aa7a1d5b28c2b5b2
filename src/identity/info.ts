import type { HubInfo } from '../info.js';
import type { IdentityArea } from './index.js';
import { administratorMsiInfo } from '../protocols/http/arm/administratorMsi.js';

/** The primary hub's HTTPS base URL, where the ARM, Azure AD and managed-identity endpoints are. */
export function managementBaseUrl(hostName: string, httpsPort: number | 'auto'): string {
  const port = httpsPort === 'auto' ? 443 : httpsPort;
  return `https://${hostName}${port === 443 ? '' : `:${port}`}`;
}

/** `fleethub info` with the identity fields: `management` (primary) and each hub's identity endpoint and header. */
export async function withIdentityInfo(info: HubInfo, identity: Pick<IdentityArea, 'identityEndpoint' | 'identityHeader' | 'management'>, baseUrl: string): Promise<HubInfo> {
  const hubIdentity = async (hub: HubInfo): Promise<HubInfo> => ({
    ...hub,
    identityEndpoint: identity.identityEndpoint(baseUrl, hub.hubName),
    identityHeader: await identity.identityHeader(hub.hubName),
  });
  return {
    ...(await hubIdentity(info)),
    management: { ...identity.management(baseUrl), ...administratorMsiInfo(baseUrl, identity.management(baseUrl).clientSecret) },
    ...(info.hubs ? { hubs: await Promise.all(info.hubs.map(hubIdentity)) } : {}),
  };
}
