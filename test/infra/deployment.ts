import { createHash } from 'node:crypto';

import { evaluate, sampleRuntimeValue } from './arm-expressions';
import type { DeploymentSnapshot, PredictedResource } from './bicep-cli';

/**
 * Azure built-in role definition ids, from Microsoft's list of built-in roles
 * (learn.microsoft.com/azure/role-based-access-control/built-in-roles), cross-checked against the
 * official azd Functions templates. Written here independently of infra/roles.json, so a typo in
 * either one fails.
 */
export const BUILT_IN_ROLES: Readonly<Record<string, string>> = {
  'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  'Storage Blob Data Contributor': 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  'Storage Blob Delegator': 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a',
  'Storage Queue Data Contributor': '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  'Cognitive Services OpenAI User': '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd',
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6',
  'Key Vault Secrets Officer': 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  'Monitoring Metrics Publisher': '3913510d-42f4-4e42-8a64-420c390055eb',
};

/** One role assignment, in words: who gets which built-in role where. */
export interface RoleGrant {
  /** `app` (the Function App's identity), `developer` (the principal running azd), `event-grid` (the system topic's identity). */
  readonly principal: string;
  readonly principalType: string;
  readonly role: string;
  /** The scope below the resource group, with the resource token written `<token>`. */
  readonly scope: string;
}

/** A `bicep snapshot` of main.bicep, read the way the tests ask about it. */
export class Deployment {
  /** The random-looking part of every resource name (uniqueString of subscription, environment, location). */
  readonly resourceToken: string;

  /** @param developerId the object id of the principal that ran azd (AZURE_PRINCIPAL_ID) */
  constructor(
    readonly snapshot: DeploymentSnapshot,
    private readonly developerId: string,
  ) {
    const identity = this.only('Microsoft.ManagedIdentity/userAssignedIdentities');
    this.resourceToken = identity.name.replace(/^id-/, '');
  }

  resources(type: string): PredictedResource[] {
    return this.snapshot.predictedResources.filter((resource) => resource.type.toLowerCase() === type.toLowerCase());
  }

  /** The one resource of a type (whose name starts with `namePrefix`, when given). */
  only(type: string, namePrefix = ''): PredictedResource {
    const found = this.resources(type).filter((resource) => resource.name.startsWith(namePrefix));
    if (found.length !== 1) throw new Error(`expected one ${type}${namePrefix ? ` named ${namePrefix}…` : ''}, found ${found.length}: ${found.map((r) => r.name).join(', ')}`);
    return found[0] as PredictedResource;
  }

  /** The Function App's settings, with sample values where only the deployment knows them. */
  appSettings(): Record<string, string> {
    // The site's other config resources (authsettingsV2, with sign-in for callers) are not settings.
    const [config, ...more] = this.resources('Microsoft.Web/sites/config').filter((resource) => resource.name.endsWith('/appsettings'));
    if (config === undefined || more.length > 0) throw new Error('expected one appsettings resource');
    const settings = evaluate(config.properties ?? {});
    return settings as Record<string, string>;
  }

  /**
   * What the app's process sees in Azure: the app settings once the platform has resolved their Key
   * Vault references (each to a sample secret as long as a generated one), plus WEBSITE_HOSTNAME,
   * which the platform sets and which tells the app it runs in Azure.
   */
  runtimeSettings(): Record<string, string> {
    const site = this.only('Microsoft.Web/sites');
    const resolved = Object.entries(this.appSettings()).map(([name, value]) => [name, resolveKeyVaultReference(value)] as const);
    return { ...Object.fromEntries(resolved), WEBSITE_HOSTNAME: sampleRuntimeValue({ resourceId: site.id, path: ['defaultHostName'] }) };
  }

  /** The outputs azd writes to .azure/<env>/.env (and hands to the hooks), with sample runtime values. */
  outputs(): Record<string, unknown> {
    return evaluate(this.snapshot.outputs) as Record<string, unknown>;
  }

  /** Every role assignment, in words. */
  roleGrants(): RoleGrant[] {
    const roleNames = new Map(Object.entries(BUILT_IN_ROLES).map(([name, id]) => [id, name]));
    const principals = this.principalNames();
    return this.resources('Microsoft.Authorization/roleAssignments').map((assignment) => {
      const id = String(evaluate(assignment.id));
      const properties = evaluate(assignment.properties ?? {}) as { principalId: string; principalType: string; roleDefinitionId: string };
      const roleId = properties.roleDefinitionId.split('/').pop() ?? '';
      return {
        principal: principals.get(properties.principalId) ?? `unknown principal ${properties.principalId}`,
        principalType: properties.principalType,
        role: roleNames.get(roleId) ?? `unknown role ${roleId}`,
        scope: this.relative(id.replace(/\/providers\/Microsoft\.Authorization\/roleAssignments\/[^/]+$/, '')),
      };
    });
  }

  /**
   * A resource id below the deployment's resource group, token written `<token>`: e.g.
   * Microsoft.Storage/storageAccounts/stimg<token>. An id elsewhere (an extra backend's account in
   * another resource group or subscription) stays whole.
   */
  relative(resourceId: string): string {
    const group = this.only('Microsoft.ManagedIdentity/userAssignedIdentities').id.replace(/\/providers\/.*$/, '');
    const below = resourceId.toLowerCase().startsWith(`${group.toLowerCase()}/providers/`) ? resourceId.slice(group.length + '/providers/'.length) : resourceId;
    return below.split(this.resourceToken).join('<token>');
  }

  private principalNames(): Map<string, string> {
    const identity = this.only('Microsoft.ManagedIdentity/userAssignedIdentities');
    const names = new Map([
      [sampleRuntimeValue({ resourceId: identity.id, path: ['principalId'] }), 'app'],
      [this.developerId, 'developer'],
    ]);
    for (const topic of this.resources('Microsoft.EventGrid/systemTopics')) {
      names.set(sampleRuntimeValue({ resourceId: topic.id, path: ['identity', 'principalId'] }), 'event-grid');
    }
    return names;
  }
}

const KEY_VAULT_REFERENCE = /^@Microsoft\.KeyVault\(SecretUri=(https:\/\/[^)]+)\)$/;

/**
 * The value the platform puts in place of a Key Vault reference: a sample secret in the format the
 * postprovision hook makes it in (infra/hooks/ensure-secrets.sh), the callback signing secret
 * `whsec_` and the base64 of 32 bytes, any other 64 hex characters.
 */
function resolveKeyVaultReference(value: string): string {
  const secretUri = KEY_VAULT_REFERENCE.exec(value)?.[1];
  if (secretUri === undefined) return value;
  const bytes = createHash('sha256').update(secretUri).digest();
  return /\/secrets\/callback-signing-secret\/$/.test(secretUri) ? `whsec_${bytes.toString('base64')}` : bytes.toString('hex');
}

/** Every string in a JSON value (expressions as written), for searching. */
export function allStrings(value: unknown): string[] {
  const found: string[] = [];
  const walk = (item: unknown) => {
    if (typeof item === 'string') found.push(item);
    else if (Array.isArray(item)) item.forEach(walk);
    else if (item !== null && typeof item === 'object') Object.values(item).forEach(walk);
  };
  walk(value);
  return found;
}
