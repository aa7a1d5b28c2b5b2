import { parseSasToken, resourceCovers, signatureMatches } from '../../core/sas.js';
import type { DpsPolicyStore } from '../../store/dps.js';
import { dpsErrors } from '../errors.js';
import type { DpsPermission, DpsSharedAccessPolicy } from '../types.js';

/**
 * Service-side SAS for the provisioning service: `sr=<dps host>` and `skn=<policy>`, signed with
 * one of that DPS policy's keys (hub policies do not open the DPS), with the operation's right.
 */
export class DpsAuthorizer {
  private readonly hosts: Set<string>;

  constructor(
    hostNames: string[],
    private readonly policies: DpsPolicyStore,
    private readonly now: () => number = Date.now,
  ) {
    this.hosts = new Set(hostNames.map((h) => h.toLowerCase()));
  }

  async authorize(authorization: string | undefined, permission: DpsPermission): Promise<DpsSharedAccessPolicy> {
    if (!authorization) throw dpsErrors.unauthorized('Authorization header is missing');
    const token = parseSasToken(authorization);
    if (!token) throw dpsErrors.unauthorized('Malformed SharedAccessSignature');
    if (token.expiry * 1000 <= this.now()) throw dpsErrors.unauthorized('SharedAccessSignature is expired');
    const host = token.resource.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase();
    if (!this.hosts.has(host) || !resourceCovers(token.resource, host)) {
      throw dpsErrors.unauthorized(`SharedAccessSignature audience '${token.resource}' is not this provisioning service`);
    }
    if (token.keyName === undefined) throw dpsErrors.unauthorized('SharedAccessSignature must name a shared access policy (skn)');
    const policy = await this.policies.get(token.keyName);
    if (!policy || !(signatureMatches(token, policy.primaryKey) || signatureMatches(token, policy.secondaryKey))) {
      throw dpsErrors.unauthorized('Unauthorized: the signature or policy name is not valid');
    }
    if (!policy.rights.includes(permission)) throw dpsErrors.unauthorized(`Unauthorized: policy ${policy.keyName} does not grant ${permission}`);
    return policy;
  }
}
