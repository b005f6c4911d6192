// The app's Key Vault, in RBAC mode, in every auth mode. It holds the job-token and callback
// signing secrets, which the postprovision hook creates once (infra/hooks/ensure-secrets.sh): a
// deployment would write a new version on every `azd provision`, and ARM cannot create a secret
// only when it is missing. In key mode it also holds the Azure OpenAI API key; that key never passes
// through a parameter or an output when this deployment created the account: it is read here with
// listKeys(). The app reads them all through Key Vault references resolved with its user-assigned
// identity.

import { roleGrant, stringMap } from '../types.bicep'

param name string
param location string
param tags stringMap = {}

@description('Store the Azure OpenAI API key (key mode).')
param storeOpenAiApiKey bool = false

param openAiApiKeySecretName string

@description('The Azure OpenAI account created by this deployment, whose key is stored; empty when the key is given.')
param openAiAccountName string = ''

@secure()
@description('The key of an existing Azure OpenAI endpoint; used when openAiAccountName is empty.')
param openAiApiKey string = ''

@description('Roles on the whole vault: its secrets are all the app\'s.')
param roleGrants roleGrant[] = []

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = if (storeOpenAiApiKey && !empty(openAiAccountName)) {
  name: empty(openAiAccountName) ? 'unused' : openAiAccountName
}

resource openAiApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (storeOpenAiApiKey) {
  parent: vault
  name: openAiApiKeySecretName
  properties: {
    value: empty(openAiAccountName) ? openAiApiKey : openAi!.listKeys().key1
  }
}

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for grant in roleGrants: {
    name: guid(vault.id, grant.principal.principalId, grant.roleDefinitionId)
    scope: vault
    properties: {
      principalId: grant.principal.principalId
      principalType: grant.principal.principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    }
  }
]

output name string = vault.name
// https://<name>.vault.azure.net/ (with the trailing slash), as the platform gives it.
output vaultUri string = vault.properties.vaultUri
