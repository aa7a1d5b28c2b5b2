import { ManagedIdentityCredential } from '@azure/identity';
import type { IdentityTokenProvider } from '../identity/egress.js';
import type { Principal, TokenCredentialLike } from '../identity/types.js';

/**
 * Fleethub on an Azure VM or in AKS: tokens from Azure's own managed-identity endpoint (IMDS, or
 * whatever endpoint the environment names), through the unmodified ManagedIdentityCredential.
 * The system-assigned identity is the host's; a user-assigned one is asked for by its resource id.
 */
export class AzureManagedIdentityTokens implements IdentityTokenProvider {
  private readonly credentials = new Map<string, TokenCredentialLike>();

  systemAssigned(_hubResourceId: string, _principal: Principal): TokenCredentialLike {
    return this.cached('system', () => new ManagedIdentityCredential());
  }

  userAssigned(resourceId: string, _principal: Principal): TokenCredentialLike {
    return this.cached(resourceId.toLowerCase(), () => new ManagedIdentityCredential({ resourceId }));
  }

  private cached(key: string, make: () => TokenCredentialLike): TokenCredentialLike {
    let c = this.credentials.get(key);
    if (!c) this.credentials.set(key, (c = make()));
    return c;
  }
}
